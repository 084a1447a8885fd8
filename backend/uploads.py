"""Checking an uploaded generator file without touching it in this (torch-free) process.

`validate_generator_file` runs `python -m stylegan2.validate` with
RLIMIT_AS / RLIMIT_CPU set in the child and a wall-clock timeout, and turns its answer
into a `ValidatedGenerator` or a `GeneratorRejected` whose message says why.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from nada.rundir import write_text

_REPO = Path(__file__).resolve().parent.parent


class GeneratorRejected(ValueError):
    """The upload is not an acceptable generator; str() says why (safe to show the user)."""


@dataclass(frozen=True)
class ValidatedGenerator:
    size: int  # image resolution in pixels
    sha256: str  # of the re-saved file


def _limits(memory_bytes: int, cpu_seconds: int):  # type: ignore[no-untyped-def]
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))

    return apply


def validate_generator_file(
    src: Path,
    dst: Path,
    *,
    memory_bytes: int = 8 << 30,  # address space of the child (torch alone maps ~2-3 GiB)
    cpu_seconds: int = 120,
    timeout_s: float = 180.0,
) -> ValidatedGenerator:
    """Validate `src` in a limited child process and write the safe re-save to `dst`.

    Raises GeneratorRejected (the file is refused, or the check ran out of memory/time).
    """
    try:
        done = subprocess.run(
            [sys.executable, "-m", "stylegan2.validate", str(src), str(dst)],
            cwd=_REPO,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            preexec_fn=_limits(memory_bytes, cpu_seconds),
        )
    except subprocess.TimeoutExpired:
        raise GeneratorRejected(f"checking the file took longer than {timeout_s:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        if done.returncode < 0 or "MemoryError" in done.stderr:
            raise GeneratorRejected(
                "checking the file exceeded its memory or CPU-time limit (is it too large?)"
            )
        raise GeneratorRejected(f"the file could not be checked (exit status {done.returncode})")
    if not answer.get("ok"):
        raise GeneratorRejected(str(answer.get("error", "refused")))
    return ValidatedGenerator(size=int(answer["size"]), sha256=str(answer["sha256"]))


class UploadTooLarge(ValueError):
    """The upload exceeded the size cap (the partial file has been removed)."""


def store_generator(
    src: Path, folder: Path, name: str, *, owner: str | None, uploaded_at: str
) -> ValidatedGenerator:
    """Validate `src` and publish it as `folder/<name>.pt` plus `folder/<name>.json`.

    Both are written under temporary names and renamed into place (the .json last: a name
    is listed/usable only once both exist). Raises GeneratorRejected, FileExistsError."""
    folder.mkdir(parents=True, exist_ok=True)
    final, sidecar = folder / f"{name}.pt", folder / f"{name}.json"
    tmp_pt = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex}.pt.tmp"
    try:
        result = validate_generator_file(src, tmp_pt)
        meta = {
            "name": name,
            "size": result.size,
            "sha256": result.sha256,
            "bytes": tmp_pt.stat().st_size,
            "uploaded_at": uploaded_at,
            "owner": owner,
        }
        os.link(tmp_pt, final)  # FileExistsError if the name was taken meanwhile
        try:
            write_text(sidecar, json.dumps(meta))
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        return result
    finally:
        tmp_pt.unlink(missing_ok=True)
