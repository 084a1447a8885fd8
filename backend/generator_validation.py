"""Checking and publishing an uploaded generator, in this (torch-free) process.

`validate_generator_file` runs `python -m stylegan2.validate` with RLIMIT_AS / RLIMIT_CPU set
in the child and a wall-clock timeout, holding one of this process's validation slots
(backend/validation_slots.py) while it runs, and turns its answer into a
`ValidatedGenerator`, a `GeneratorRejected` whose message says why, or an OSError(ENOSPC)
when the child found the disk full. `store_generator` publishes a validated file under its
name. Receiving the upload is backend/uploads.py's; this module only sees a file on disk.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.validation_slots import VALIDATIONS
from nada.rundir import write_text
from stylegan2 import sniff

_REPO = Path(__file__).resolve().parent.parent


class UploadRejected(ValueError):
    """An uploaded model file that is refused; str() says why (safe to show the user)."""


class GeneratorRejected(UploadRejected):
    """The upload is not an acceptable generator; str() says why (safe to show the user)."""


@dataclass(frozen=True)
class ValidatedGenerator:
    size: int  # image resolution in pixels
    sha256: str  # of the re-saved file
    family: str = "stylegan2"  # 'stylegan2' or 'stylegan3'


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_prctl: Callable[..., int] | None
try:  # looked up here, in the parent: a child between fork and exec must not dlopen
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the wall-clock timeout still bounds the child
    _prctl = None


def _limits(memory_bytes: int, cpu_seconds: int):  # type: ignore[no-untyped-def]
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        if _prctl is not None:
            # Killed with its parent: an API process killed mid-check (kill -9 leaves no
            # chance to clean up) must not leave an orphan writing a re-save nobody reads.
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return apply


def run_check(
    module_argv: list[str],
    src: Path,
    rejected: type[UploadRejected],
    *,
    memory_bytes: int,
    cpu_seconds: int,
    timeout_s: float,
    max_running: int | None,
    owner: str | None,
) -> dict[str, Any]:
    """Run `python -m <module_argv>` on the upload `src` in a limited child holding a
    validation slot, and return its JSON answer ({"ok": true, ...}). The checks of every
    uploaded model file (a generator, an edit direction) go through here.

    Raises `rejected` (the file is refused, or the check ran out of memory/time),
    ValidatorsBusy and OSError(ENOSPC) (the child could not write: the disk is full).
    """
    try:
        reason = sniff.not_torch_reason(sniff.read_head(src))
    except OSError as exc:
        raise rejected(f"the upload could not be read: {exc.strerror or exc}") from None
    if reason is not None:  # plainly not a checkpoint: no child needed to say so
        raise rejected(f"the upload is not a PyTorch checkpoint ({reason})")
    try:
        with VALIDATIONS.take(max_running, owner=owner):  # held until the child has exited
            done = subprocess.run(
                [sys.executable, "-m", *module_argv],
                cwd=_REPO,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                preexec_fn=_limits(memory_bytes, cpu_seconds),
            )
    except subprocess.TimeoutExpired:
        raise rejected(f"checking the file took longer than {timeout_s:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        if done.returncode < 0 or "MemoryError" in done.stderr:
            raise rejected(
                "checking the file exceeded its memory or CPU-time limit (is it too large?)"
            )
        raise rejected(f"the file could not be checked (exit status {done.returncode})")
    if answer.get("disk_full"):
        raise OSError(errno.ENOSPC, "no space left on the device while re-saving the upload")
    if not answer.get("ok"):
        raise rejected(str(answer.get("error", "refused")))
    return answer


def validate_generator_file(
    src: Path,
    dst: Path,
    *,
    memory_bytes: int = 8 << 30,  # address space of the child (torch alone maps ~2-3 GiB)
    cpu_seconds: int = 120,
    timeout_s: float = 180.0,
    max_running: int | None = None,  # children at once in this process; None: no limit
    owner: str | None = None,  # the uploading token, held to its share of `max_running`
) -> ValidatedGenerator:
    """Validate `src` in a limited child process and write the safe re-save to `dst`.

    A file whose first bytes are neither a zip archive nor a pickle is refused here, in the
    API process, without a child (junk costs no interpreter start).

    Raises GeneratorRejected (the file is refused, or the check ran out of memory/time),
    ValidatorsBusy (`max_running` children are running; no child was started) and
    OSError(ENOSPC) (the child could not write `dst`: the disk is full).
    """
    answer = run_check(
        ["stylegan2.validate", str(src), str(dst)], src, GeneratorRejected,
        memory_bytes=memory_bytes, cpu_seconds=cpu_seconds, timeout_s=timeout_s,
        max_running=max_running, owner=owner,
    )  # fmt: skip
    return ValidatedGenerator(
        size=int(answer["size"]),
        sha256=str(answer["sha256"]),
        family=str(answer.get("family") or "stylegan2"),
    )


def store_checked(
    folder: Path, name: str, check: Callable[[Path], dict[str, Any]]
) -> dict[str, Any]:
    """Publish a checked upload as `folder/<name>.pt` plus its sidecar `folder/<name>.json`.

    `check(tmp)` validates the upload, writes the re-saved file to `tmp` and returns the
    sidecar's metadata. The file is linked into place under its final name (FileExistsError
    if the name was taken meanwhile) and the .json written last, so a name is listed and
    usable only once both exist; the temporary file goes in every case. One home for every
    kind of upload that is checked in a child (generators, edit directions)."""
    folder.mkdir(parents=True, exist_ok=True)
    final, sidecar = folder / f"{name}.pt", folder / f"{name}.json"
    tmp = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex}.pt.tmp"
    try:
        meta = check(tmp)
        os.link(tmp, final)
        try:
            write_text(sidecar, json.dumps(meta))
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        return meta
    finally:
        tmp.unlink(missing_ok=True)


def store_generator(
    src: Path,
    folder: Path,
    name: str,
    *,
    owner: str | None,
    uploaded_at: str,
    max_validations: int | None = None,  # validator children at once in this process
) -> ValidatedGenerator:
    """Validate `src` and publish it as `folder/<name>.pt` plus `folder/<name>.json`
    (store_checked). Raises GeneratorRejected, ValidatorsBusy, FileExistsError, OSError
    (ENOSPC: the disk is full)."""
    results: list[ValidatedGenerator] = []

    def check(tmp: Path) -> dict[str, Any]:
        result = validate_generator_file(src, tmp, max_running=max_validations, owner=owner)
        results.append(result)
        return {
            "name": name,
            "size": result.size,
            "sha256": result.sha256,
            "family": result.family,
            "bytes": tmp.stat().st_size,
            "uploaded_at": uploaded_at,
            "owner": owner,
        }

    store_checked(folder, name, check)
    return results[0]
