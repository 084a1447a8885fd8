"""POST /api/v1/generators: how much checking an upload may cost, and what its refusals say.

Pass criteria, through the real route:
- a zip archive that declares more than a StyleGAN2 generator can need (one record of
  100 MiB, 540 MiB in all, a 100 MiB pickle, 5,000 records) is 422 naming what it declares,
  decided from the central directory before anything is decompressed;
- beyond NADA_MAX_CONCURRENT_VALIDATIONS checks at once the answer is 429 with Retry-After,
  and no more validator children than that ever run;
- NaN in `latent_avg`, a tensor of the wrong shape and integer or float64 weights are 422
  naming the key (and the dtype); float16 and bfloat16 generators are accepted;
- a name with surrounding white space is 422 naming `name`, not trimmed;
- a full disk while the validator child writes its re-save is 507, not 422.
No file is left behind on any path."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
import zipfile
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import pytest
import torch

from backend import generator_validation
from backend.validation_slots import VALIDATIONS
from jobs.settings import Settings

API = "/api/v1"
_MIB_OF_ZEROS = bytes(1 << 20)


@pytest.fixture(scope="module")
def good_state(good_bytes: bytes) -> dict:
    return torch.load(io.BytesIO(good_bytes), weights_only=True)


def _upload(client, name: str, data: bytes):  # type: ignore[no-untyped-def]
    return client.post(
        f"{API}/generators",
        data={"name": name},
        files={"file": ("g.pt", io.BytesIO(data), "application/octet-stream")},
    )


def _refused(response, field: str = "file") -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", field]
    return str(detail["msg"])


def _uploaded(client) -> list[str]:  # type: ignore[no-untyped-def]
    listed = client.get(f"{API}/generators").json()["data"]
    return [g["name"] for g in listed if g["source"] == "upload"]


def _saved(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


# --- 1. archives that declare more than a generator can need ------------------------------


def _inflating(good: bytes, records: dict[str, int], extra_records: int = 0) -> bytes:
    """`good` (a torch.save zip) with the records named in `records` replaced by that many
    MiB of zeros, deflated (a few hundred KiB on the wire), plus `extra_records` tiny ones."""
    src = zipfile.ZipFile(io.BytesIO(good))
    prefix = src.namelist()[0].split("/")[0]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename.removeprefix(f"{prefix}/") not in records:
                dst.writestr(info, src.read(info))
        for name, mib in records.items():
            info = zipfile.ZipInfo(f"{prefix}/{name}")
            info.compress_type = zipfile.ZIP_DEFLATED
            with dst.open(info, "w", force_zip64=True) as f:
                for _ in range(mib):
                    f.write(_MIB_OF_ZEROS)
        for i in range(extra_records):
            dst.writestr(f"{prefix}/extra/{i}", b"")
    return out.getvalue()


@pytest.mark.parametrize(
    "records, extra, says",
    [
        ({"data/0": 100}, 0, r"record 'archive/data/0' of the upload declares 100.0 MiB"),
        ({f"data/{i}": 60 for i in range(9)}, 0, "MiB of data once decompressed; a StyleGAN2"),
        ({"data.pkl": 100}, 0, "record 'archive/data.pkl' of the upload declares 100.0 MiB"),
        ({}, 5000, "the upload's zip archive has 5052 records"),
    ],
    ids=["one-record", "total", "pickle", "entries"],
)
def test_an_archive_declaring_more_than_a_generator_needs_is_refused_unopened(
    client,
    settings: Settings,
    leftovers,
    good_bytes: bytes,
    records: dict[str, int],
    extra: int,
    says: str,
) -> None:  # type: ignore[no-untyped-def]
    data = _inflating(good_bytes, records, extra)
    assert len(data) < len(good_bytes) + (2 << 20)  # a small upload...
    start = time.monotonic()
    msg = _refused(_upload(client, "bomb", data))
    assert msg.startswith("refused: ") and says in msg, msg
    assert "StyleGAN2 generator" in msg  # ... and what a generator needs instead
    assert time.monotonic() - start < 30  # nothing was decompressed (the child skips torch)
    assert _uploaded(client) == [] and leftovers() == []


# --- 2. how many checks run at once -------------------------------------------------------


def test_beyond_the_concurrent_validation_cap_is_429(
    client, settings: Settings, leftovers, good_bytes: bytes
) -> None:  # type: ignore[no-untyped-def]
    settings.max_concurrent_validations = 1
    with VALIDATIONS.take(None):  # a check that is running in this process
        r = _upload(client, "busy", good_bytes)
        assert r.status_code == 429, r.text
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert "NADA_MAX_CONCURRENT_VALIDATIONS" in r.json()["detail"]
        assert _uploaded(client) == [] and leftovers() == []
    assert VALIDATIONS.running == 0
    assert _upload(client, "busy", good_bytes).status_code == 201  # the slot is free again


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "the file is empty"),
        (b"<!DOCTYPE html><html>Virus scan warning", "an HTML page"),
        (b"hello, world\n" * 20, "neither a zip archive nor a pickle"),
    ],
)
def test_plainly_not_a_checkpoint_is_refused_without_a_validator_child(
    client, settings: Settings, leftovers, monkeypatch: pytest.MonkeyPatch, data: bytes, why: str
) -> None:  # type: ignore[no-untyped-def]
    """Junk is refused by its first bytes in the API process: no child, no validation slot."""
    settings.max_concurrent_validations = 1

    def child(args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError(f"a validator child was started for {data[:16]!r}")

    monkeypatch.setattr(generator_validation.subprocess, "run", child)
    with VALIDATIONS.take(None):  # the only slot is taken: junk needs none
        message = _refused(_upload(client, "junk", data))
    assert "not a PyTorch checkpoint" in message and why in message
    assert _uploaded(client) == [] and leftovers() == []


def test_no_more_validators_than_the_cap_run_at_once(
    client, settings: Settings, leftovers, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Three uploads at once with a cap of 2: two children run (held here until the third
    has its answer), the third is 429 without starting one."""
    settings.max_concurrent_validations = 2
    lock, release = threading.Lock(), threading.Event()
    running = peak = 0

    def child(args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            assert release.wait(60)
            Path(args[-1]).write_bytes(b"re-saved")
            answer = {"ok": True, "size": 8, "sha256": "0" * 64}
            return subprocess.CompletedProcess(args, 0, json.dumps(answer) + "\n", "")
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(generator_validation.subprocess, "run", child)
    zip_head = b"PK\x03\x04 weights"  # passes the in-process header check; the child is ours
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(_upload, client, f"gen-{i}", zip_head) for i in range(3)]
        try:
            done, _ = wait(futures, timeout=60, return_when=FIRST_COMPLETED)
            [first] = done
            assert first.result().status_code == 429, first.result().text
            assert first.result().headers["retry-after"]
        finally:
            release.set()
        codes = sorted(f.result().status_code for f in futures)
    assert codes == [201, 201, 429] and peak == 2
    assert VALIDATIONS.running == 0
    assert len(_uploaded(client)) == 2 and leftovers() == []


# --- 3. what a refusal says ---------------------------------------------------------------


def test_refusals_name_the_key_and_what_is_wrong_with_it(
    client, settings: Settings, leftovers, good_state: dict
) -> None:  # type: ignore[no-untyped-def]
    g_ema = good_state["g_ema"]
    latent_avg = good_state["latent_avg"]
    cases = [
        (  # NaN was reported as "wrong shape for 'latent_avg': [512] (expected [512])"
            {"g_ema": g_ema, "latent_avg": torch.full((512,), float("nan"))},
            "weight 'latent_avg' holds NaN or infinite values",
        ),
        (  # a square style.1.weight used to redefine style_dim and get style.1.bias blamed
            {"g_ema": {**g_ema, "style.1.weight": torch.zeros(256, 256)}, "latent_avg": latent_avg},
            "wrong shape for 'style.1.weight': the file has [256, 256]",
        ),
        (  # integers were cast to float32 without a word
            {
                "g_ema": {**g_ema, "conv1.conv.weight": g_ema["conv1.conv.weight"].long()},
                "latent_avg": latent_avg,
            },
            "weight 'conv1.conv.weight' has dtype int64; weights must be float32, float16 or "
            "bfloat16",
        ),
        (
            {
                "g_ema": {**g_ema, "style.3.bias": g_ema["style.3.bias"].double()},
                "latent_avg": latent_avg,
            },
            "weight 'style.3.bias' has dtype float64",
        ),
    ]
    for i, (checkpoint, says) in enumerate(cases):
        msg = _refused(_upload(client, f"bad-{i}", _saved(checkpoint)))
        assert says in msg, msg
        assert str(settings.data_dir) not in msg
    assert _uploaded(client) == [] and leftovers() == []


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_generators_are_accepted(
    client, settings: Settings, good_state: dict, dtype: torch.dtype
) -> None:  # type: ignore[no-untyped-def]
    half = {
        "g_ema": {k: v.to(dtype) for k, v in good_state["g_ema"].items()},
        "latent_avg": good_state["latent_avg"].to(dtype),
    }
    r = _upload(client, "half", _saved(half))
    assert r.status_code == 201, r.text
    stored = torch.load(settings.data_dir / "generators" / "half.pt", weights_only=True)
    assert stored["g_ema"]["style.1.weight"].dtype == torch.float32  # re-saved as float32


@pytest.mark.parametrize("name", [" gen", "gen ", "gen\t", "\ngen"])
def test_a_name_with_surrounding_white_space_is_refused(
    client, settings: Settings, leftovers, good_bytes: bytes, name: str
) -> None:  # type: ignore[no-untyped-def]
    msg = _refused(_upload(client, name, good_bytes), field="name")
    assert "must not begin or end with spaces" in msg
    assert _uploaded(client) == [] and leftovers() == []


# --- 4. a full disk in the validator child ------------------------------------------------


def test_disk_full_while_the_validator_writes_its_resave_is_507(
    client,
    settings: Settings,
    leftovers,
    good_bytes: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """The child's os.fsync fails with ENOSPC (where a full disk shows for a file written
    through the page cache): a `sitecustomize` on the child's PYTHONPATH."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import errno, os\n"
        "def _full(fd):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "os.fsync = _full\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hook))
    r = _upload(client, "full", good_bytes)
    assert r.status_code == 507, r.text
    assert "disk is full" in r.json()["detail"]
    assert _uploaded(client) == [] and leftovers() == []
