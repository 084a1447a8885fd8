"""Checkpoint I/O: our files round-trip, rosinality's files load, bad files are refused."""

from __future__ import annotations

import argparse
import enum
import hashlib
import os
import pickle
import random
from pathlib import Path

import pytest
import torch
from torch import nn

from stylegan2 import registry
from stylegan2.checkpoint import (
    MEAN_LATENT_SAMPLES,
    CheckpointError,
    GeneratorConfig,
    LoadedGenerator,
    compute_mean_latent,
    infer_config,
    load_generator,
    load_untrusted,
    random_generator,
    save_generator,
)
from stylegan2.model import Generator
from stylegan2.registry import GeneratorInfo, UnknownGeneratorError

from .conftest import REFERENCE, rebuild_reference_weights

SMALL = dict(style_dim=32, n_mlp=2, channel_multiplier=1)  # an 8 px generator: ~7 M weights


@pytest.fixture(scope="module")
def small() -> LoadedGenerator:
    return random_generator(8, seed=3, **SMALL)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(registry.GENERATORS, "_entries", dict(registry.GENERATORS._entries))


def render(loaded: LoadedGenerator, seed: int = 7) -> torch.Tensor:
    z = torch.randn(2, loaded.generator.style_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        image, _ = loaded.generator([z], randomize_noise=False)
    return image


def state(loaded: LoadedGenerator) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in loaded.generator.state_dict().items()}


# -- our own files --------------------------------------------------------------------------


class Phase(enum.StrEnum):
    TEXTURE = "texture"


def test_saved_checkpoint_loads_back_strictly_and_renders_identically(
    small: LoadedGenerator, tmp_path: Path
) -> None:
    path = tmp_path / "out" / "adapted.pt"
    metadata = {
        "base": small.identity,
        "prompt": ["photo", "sketch"],
        "lr": (0.002, 1),
        "p": Phase.TEXTURE,
    }
    digest = save_generator(path, small.generator, small.latent_avg, metadata)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.name for p in path.parent.iterdir()] == ["adapted.pt"]  # no temp file left

    loaded = load_generator(path)
    assert torch.equal(render(loaded), render(small))
    assert torch.equal(loaded.latent_avg, small.latent_avg)
    assert loaded.identity == {
        "name": None,
        "path": str(path.resolve()),
        "sha256": digest,
        "size": 8,
        "style_dim": 32,
        "n_mlp": 2,
        "channel_multiplier": 1,  # ambiguous below 64 px: taken from our metadata
        "seed": None,
    }
    assert loaded.metadata["base"] == small.identity
    assert loaded.metadata["lr"] == [0.002, 1] and type(loaded.metadata["p"]) is str
    assert loaded.metadata["stylegan2"]["format_version"] == 1
    assert not loaded.generator.training


def test_saved_file_is_rosinality_layout(small: LoadedGenerator, tmp_path: Path) -> None:
    path = tmp_path / "g.pt"
    save_generator(path, small.generator, small.latent_avg.unsqueeze(0), {"source": "test"})
    ckpt = torch.load(path, weights_only=True)  # plain torch.load: no allow-listed classes
    assert set(ckpt) == {"g_ema", "latent_avg", "metadata"}
    assert ckpt["latent_avg"].shape == (32,)
    fresh = Generator(8, **SMALL)
    fresh.load_state_dict(ckpt["g_ema"], strict=True)


def test_save_refuses_metadata_that_is_not_plain_data(
    small: LoadedGenerator, tmp_path: Path
) -> None:
    path = tmp_path / "g.pt"
    with pytest.raises(ValueError, match=r"metadata\['base'\]\['path'\] is a PosixPath"):
        save_generator(path, small.generator, small.latent_avg, {"base": {"path": tmp_path}})
    with pytest.raises(ValueError, match="non-string key 1"):
        save_generator(path, small.generator, small.latent_avg, {1: "x"})
    with pytest.raises(CheckpointError, match=r"wrong shape for 'latent_avg': \[3\]"):
        save_generator(path, small.generator, torch.zeros(3), {})
    assert list(tmp_path.iterdir()) == []


# -- rosinality's files ---------------------------------------------------------------------


def adam_state(params: list[torch.Tensor]) -> dict:
    """The structure of torch.optim.Adam(...).state_dict() after one step (no optimizer
    is built: constructing one imports torch._dynamo, seconds on a small CPU)."""
    state = {
        i: {"step": torch.tensor(1.0), "exp_avg": p * 0.1, "exp_avg_sq": p * p * 0.01}
        for i, p in enumerate(params)
    }
    group = dict(lr=0.002, betas=(0.0, 0.99), eps=1e-8, weight_decay=0, amsgrad=False,
                 maximize=False, foreach=None, capturable=False, differentiable=False,
                 fused=None, params=list(range(len(params))))  # fmt: skip
    return {"state": state, "param_groups": [group]}


def training_checkpoint(loaded: LoadedGenerator) -> dict:
    """What rosinality's train.py saves: no latent_avg, args as an argparse.Namespace."""
    d = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(144, 1))
    args = argparse.Namespace(
        path="lmdb/ffhq", arch="stylegan2", iter=800000, batch=16, size=8, r1=10.0,
        channel_multiplier=1, augment=False, ckpt=None, wandb=False, mixing=0.9,
    )  # fmt: skip
    sd = state(loaded)
    return {
        "g": sd,
        "d": d.state_dict(),
        "g_ema": sd,
        "g_optim": adam_state([sd["to_rgb1.bias"], sd["input.input"]]),
        "d_optim": adam_state([p.detach() for p in d.parameters()]),
        "args": args,
        "ada_aug_p": 0.1,
    }


def test_training_checkpoint_with_args_loads(small: LoadedGenerator, tmp_path: Path) -> None:
    path = tmp_path / "100000.pt"
    torch.save(training_checkpoint(small), path)
    torch.manual_seed(1)
    expected_draw = torch.rand(3)
    torch.manual_seed(1)
    loaded = load_generator(path)
    assert torch.equal(torch.rand(3), expected_draw)  # loading left the global RNG alone
    assert torch.equal(render(loaded), render(small))
    assert loaded.identity["channel_multiplier"] == 1  # from args
    assert loaded.metadata == {}
    # No latent_avg in the file: the mean of 4096 mapped z from a fixed seed, every time.
    assert loaded.latent_avg.shape == (32,)
    assert torch.equal(loaded.latent_avg, load_generator(path).latent_avg)
    assert torch.equal(loaded.latent_avg, compute_mean_latent(loaded.generator))
    assert MEAN_LATENT_SAMPLES == 4096


def test_bare_state_dict_and_dataparallel_prefix_load(
    small: LoadedGenerator, tmp_path: Path
) -> None:
    torch.save(state(small), tmp_path / "bare.pt")
    assert torch.equal(render(load_generator(tmp_path / "bare.pt")), render(small))
    prefixed = {f"module.{k}": v for k, v in state(small).items()}
    torch.save({"g_ema": prefixed, "latent_avg": small.latent_avg}, tmp_path / "dp.pt")
    assert torch.equal(render(load_generator(str(tmp_path / "dp.pt"))), render(small))


def test_reference_checkpoint_renders_the_reference_images(tmp_path: Path) -> None:
    ref = torch.load(REFERENCE / "stylegan2_reference_64.pt", weights_only=True)
    weights = rebuild_reference_weights(ref)
    torch.save({"g_ema": weights, "latent_avg": torch.zeros(512)}, tmp_path / "ref.pt")
    loaded = load_generator(tmp_path / "ref.pt")
    assert (loaded.identity["size"], loaded.identity["channel_multiplier"]) == (64, 2)
    with torch.no_grad():
        image, _ = loaded.generator([ref["z"]], randomize_noise=False)
    assert (image - ref["img_z"]).abs().max() < 1e-4


def manifest() -> dict[str, dict[str, tuple[int, ...]]]:
    configs: dict[str, dict[str, tuple[int, ...]]] = {}
    for line in (REFERENCE / "stylegan2_state_dict_manifest.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            config, key, shape = line.split("\t")
            configs.setdefault(config, {})[key] = tuple(int(n) for n in shape.split("x"))
    return configs


def test_config_is_inferred_from_public_checkpoint_shapes() -> None:
    got = {
        name: infer_config({k: torch.empty(s, device="meta") for k, s in keys.items()})
        for name, keys in manifest().items()
    }
    assert got == {
        "g_ema_1024": GeneratorConfig(1024, 512, 8, 2),
        "g_ema_512": GeneratorConfig(512, 512, 8, 2),
        "g_ema_256": GeneratorConfig(256, 512, 8, 2),
    }


def test_channel_multiplier_one_is_inferred() -> None:
    shapes = {k: v.to("meta") for k, v in Generator(64, 32, 3, 1).state_dict().items()}
    assert infer_config(shapes) == GeneratorConfig(64, 32, 3, 1)


# -- refusing bad files ---------------------------------------------------------------------


class RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # what a malicious checkpoint does
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused(small: LoadedGenerator, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = RunsCode(marker)
    files = {
        "zip.pt": lambda p: torch.save({"g_ema": state(small), "x": evil}, p),
        "legacy.pt": lambda p: torch.save(
            {"g_ema": state(small), "x": evil}, p, _use_new_zipfile_serialization=False
        ),
        "args.pt": lambda p: torch.save(
            {"g_ema": state(small), "args": argparse.Namespace(x=evil)}, p
        ),
        "plain.pkl": lambda p: p.write_bytes(pickle.dumps({"g_ema": evil}, protocol=2)),
    }
    for name, write in files.items():
        write(tmp_path / name)
        with pytest.raises(
            CheckpointError, match=r"refusing to load .*\(posix\.system\) that could run code"
        ):
            load_generator(tmp_path / name)
    assert not marker.exists()


def test_a_plain_pickle_without_networks_is_refused_by_the_nvidia_reader(tmp_path: Path) -> None:
    """Plain pickles go to the NVIDIA reader (tests/stylegan2/test_nvidia_pickle.py); one
    that names NVIDIA's reconstructor but holds no network says what it holds."""
    path = tmp_path / "ffhq.pkl"  # GLOBAL torch_utils.persistence._reconstruct_persistent_obj
    path.write_bytes(b"\x80\x02ctorch_utils.persistence\n_reconstruct_persistent_obj\nq\x00.")
    with pytest.raises(
        CheckpointError, match=r"nor a readable NVIDIA pickle \(it holds a function, not a dict"
    ):
        load_generator(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        # Seeded noise: a random first byte of 0x80 (pickle's PROTO) would make it a pickle.
        (b"\x00" + random.Random(0).randbytes(4095), "neither a zip archive nor a pickle"),
        (b"hello, world\n" * 50, "neither a zip archive nor a pickle"),
        (b"<!DOCTYPE html><html><body>Google Drive - Virus scan warning", "an HTML page"),
        (b"", "the file is empty"),
        (b"\x80\x04\x95junk junk junk", "not a PyTorch checkpoint"),
    ],
)
def test_files_that_are_not_torch_checkpoints(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as err:
        load_generator(path)
    assert reason in str(err.value)


def test_a_truncated_checkpoint_is_refused(small: LoadedGenerator, tmp_path: Path) -> None:
    path = tmp_path / "g.pt"
    save_generator(path, small.generator, small.latent_avg, {})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint .truncated or corrupted"):
        load_generator(path)


def test_missing_g_ema_says_so(small: LoadedGenerator, tmp_path: Path) -> None:
    cases = {
        "d_only.pt": ({"d": {"w": torch.zeros(1)}, "args": argparse.Namespace()}, "no 'g_ema'"),
        "ada.pt": ({"G_ema": {"w": torch.zeros(1)}, "D": {}}, "StyleGAN2-ADA"),
        "linear.pt": (nn.Linear(2, 2).state_dict(), "not of a StyleGAN2 generator"),
        "list.pt": ([torch.zeros(1)], "expected a dict with a 'g_ema'"),
        "notsd.pt": ({"g_ema": [1, 2]}, "'g_ema' is not a state dict"),
    }
    for name, (obj, message) in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(CheckpointError, match=message):
            load_generator(tmp_path / name)


def test_wrong_shapes_and_keys_name_the_key(small: LoadedGenerator, tmp_path: Path) -> None:
    def check(mutate, message: str) -> None:
        sd = state(small)
        extra = mutate(sd)
        extra = extra if isinstance(extra, dict) else {}  # top-level replacements
        torch.save({"g_ema": sd, "latent_avg": small.latent_avg, **extra}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=message):
            load_generator(tmp_path / "bad.pt")

    check(
        lambda sd: sd.update({"convs.1.conv.weight": torch.zeros(1, 512, 512, 1, 1)}),
        r"wrong shape for 'convs.1.conv.weight': the file has \[1, 512, 512, 1, 1\], a 8 px "
        r"generator \(style_dim 32, n_mlp 2, channel_multiplier 2\) needs \[1, 512, 512, 3, 3\]",
    )
    check(lambda sd: sd.pop("noises.noise_2"), r"is missing keys .*: noises.noise_2")
    check(lambda sd: sd.update({"extra.weight": torch.zeros(1)}), "unexpected keys .*extra.weight")
    check(lambda sd: sd.pop("style.1.weight"), "missing 'style.1.weight'")
    check(lambda sd: {"latent_avg": torch.zeros(2, 7)}, r"wrong shape for 'latent_avg': \[2, 7\]")


def test_one_tensor_of_the_wrong_shape_is_blamed_on_its_own_key(
    small: LoadedGenerator, tmp_path: Path
) -> None:
    """style_dim and channel_multiplier are read off every tensor that shows them, so one
    bad tensor does not redefine the architecture and get the good ones blamed."""
    sd = state(small)
    sd["style.1.weight"] = torch.zeros(64, 64)  # square, but not [style_dim, style_dim]
    torch.save({"g_ema": sd, "latent_avg": small.latent_avg}, tmp_path / "bad.pt")
    with pytest.raises(
        CheckpointError,
        match=r"wrong shape for 'style.1.weight': the file has \[64, 64\], .*needs \[32, 32\]",
    ):
        load_generator(tmp_path / "bad.pt")

    shapes = {k: v.to("meta") for k, v in Generator(64, 32, 3, 1).state_dict().items()}
    shapes["to_rgbs.3.conv.weight"] = torch.empty(1, 3, 512, 1, 1, device="meta")  # cm 2's
    assert infer_config(shapes) == GeneratorConfig(64, 32, 3, 1)  # the other layers say 1


def test_latent_avg_messages_say_what_is_wrong(small: LoadedGenerator, tmp_path: Path) -> None:
    for latent_avg, message in [
        (torch.full((32,), float("nan")), r"'latent_avg' holds NaN or infinite values"),
        (torch.randn(4, 32), r"'latent_avg' is \[4, 32\] with rows that differ"),
        (torch.zeros(2, 7), r"wrong shape for 'latent_avg': \[2, 7\]"),
    ]:
        torch.save({"g_ema": state(small), "latent_avg": latent_avg}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=message):
            load_generator(tmp_path / "bad.pt")


def test_load_untrusted_checks_dtypes_and_values(small: LoadedGenerator, tmp_path: Path) -> None:
    """load_generator casts any dtype into float32 without a word; load_untrusted (the
    upload check) refuses what is not float32/float16/bfloat16, and NaN/inf, naming the key."""
    path = tmp_path / "g.pt"

    def save(sd: dict[str, torch.Tensor], latent_avg: torch.Tensor) -> Path:
        torch.save({"g_ema": sd, "latent_avg": latent_avg}, path)
        return path

    as_int = {**state(small), "conv1.conv.weight": state(small)["conv1.conv.weight"].long()}
    assert load_generator(save(as_int, small.latent_avg)).identity["size"] == 8  # unchanged
    with pytest.raises(CheckpointError, match="weight 'conv1.conv.weight' has dtype int64; "):
        load_untrusted(path)
    nan = state(small)
    nan["to_rgb1.bias"][0, 1] = float("inf")
    for sd, latent_avg, message in [
        (
            {**state(small), "style.2.bias": torch.zeros(32, dtype=torch.float64)},
            small.latent_avg,
            "'style.2.bias' has dtype float64; weights must be float32, float16 or bfloat16",
        ),
        (
            {**state(small), "style.2.bias": torch.zeros(32, dtype=torch.bool)},
            small.latent_avg,
            "'style.2.bias' has dtype bool",
        ),
        (state(small), small.latent_avg.int(), "weight 'latent_avg' has dtype int32"),
        (state(small), torch.full((32,), float("nan")), "'latent_avg' holds NaN or infinite"),
        (nan, small.latent_avg, "weight 'to_rgb1.bias' holds NaN or infinite values"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            load_untrusted(save(sd, latent_avg))
    for dtype in (torch.float16, torch.bfloat16):
        half = {k: v.to(dtype) for k, v in state(small).items()}
        loaded = load_untrusted(save(half, small.latent_avg.to(dtype)))
        assert next(loaded.generator.parameters()).dtype == torch.float32
        assert loaded.latent_avg.dtype == torch.float32


# -- names: random-<size>, the registry, paths ---------------------------------------------


def test_random_generators_are_seeded() -> None:
    a, b = random_generator(8, **SMALL), load_generator("random-8", **SMALL)
    assert all(torch.equal(x, y) for x, y in zip(state(a).values(), state(b).values(), strict=True))
    assert torch.equal(a.latent_avg, b.latent_avg)
    assert b.identity == {
        "name": "random-8", "path": None, "sha256": None, "size": 8, "style_dim": 32,
        "n_mlp": 2, "channel_multiplier": 1, "seed": 0,
    }  # fmt: skip
    other = random_generator(8, seed=1, **SMALL)
    assert not torch.equal(state(a)["input.input"], state(other)["input.input"])
    with pytest.raises(ValueError, match="power of two"):
        load_generator("random-12")
    with pytest.raises(ValueError, match="apply only to random-<size>"):
        load_generator("ffhq-1024", style_dim=64)


def test_unknown_names_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(
        UnknownGeneratorError, match="unknown generator 'ffqh-1024'; known: ffhq-1024"
    ):
        load_generator("ffqh-1024")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_generator(tmp_path / "nope.pt")


def test_registry_names_download_verify_and_check_the_size(
    small: LoadedGenerator, file_server: tuple[str, Path]
) -> None:
    base, root = file_server
    digest = save_generator(root / "tiny.pt", small.generator, small.latent_avg, {})
    info = dict(domain="test", description="test", url=f"{base}/tiny.pt", sha256=digest)
    registry.add_generator(GeneratorInfo(name="tiny-8", size=8, filename="tiny-8.pt", **info))
    loaded = load_generator("tiny-8")
    assert loaded.identity["name"] == "tiny-8" and loaded.identity["sha256"] == digest
    assert loaded.identity["path"] == str(registry.cache_path("tiny-8").resolve())
    assert torch.equal(render(loaded), render(small))

    registry.add_generator(GeneratorInfo(name="tiny-16", size=16, filename="t16.pt", **info))
    with pytest.raises(CheckpointError, match="tiny-16 should be a 16 px generator"):
        load_generator("tiny-16")
