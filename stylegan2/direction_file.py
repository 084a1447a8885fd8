"""A latent edit direction file read as data: `read_direction`, and the upload check
`python -m stylegan2.direction_file SRC DST W_DIM NUM_WS` (run by the API in a limited
child process, backend/generator_validation.py, like a generator upload's check).

A direction is one tensor in a generator's W space, `[w_dim]`, InterfaceGAN's `[1, w_dim]`
(read as `[w_dim]`) or `[num_ws, w_dim]`: the layout of the original StyleGAN-NADA
repository's `editing/interfacegan_boundaries/*.pt`. Reading never runs code from the file
(`torch.load(weights_only=True)`, stylegan2.checkpoint.read_checkpoint) and is capped: the
file's size, and what a zip archive's records declare they inflate to, read off its central
directory before anything is inflated. The check re-saves the tensor alone (float32), so
nothing of an upload's pickle survives. Applying directions is worker/latent_edits.py's.
"""

from __future__ import annotations

import errno
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from nada.errors import InputError
from stylegan2.checkpoint import CheckpointError, read_checkpoint
from stylegan2.directions import MAX_DIRECTION_BYTES

MAX_FILE_BYTES = MAX_DIRECTION_BYTES  # a direction file on disk
MAX_ARCHIVE_BYTES = 16 << 20  # what its zip records may inflate to, read off the directory
MAX_RECORDS = 64  # records in its archive (a tensor saved alone has 4 or 5)


class DirectionError(InputError):
    """A direction file that cannot be used (unreadable, too big, another shape); str()
    names the direction, `field` the parameter that named it (the CLI's flag)."""

    field: str = "edits"


def _check_archive(path: Path) -> None:
    """A zip archive (torch.save's format) declaring more than a small tensor needs is refused
    before any record is inflated."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile:
        return  # not a zip: the legacy format, bounded by the file's size
    total = sum(info.file_size for info in infos)
    if len(infos) > MAX_RECORDS or total > MAX_ARCHIVE_BYTES:
        raise DirectionError(
            f"direction file {path.name} declares {len(infos)} records of {total} bytes in all; "
            f"a direction is one small tensor (at most {MAX_ARCHIVE_BYTES} bytes)"
        )


def read_direction(path: Path, *, w_dim: int, num_ws: int, name: str = "") -> Tensor:
    """A direction file as a float32 tensor [w_dim] or [num_ws, w_dim], read under caps:
    its size, its archive's declared sizes, `torch.load(weights_only=True)` (no code runs),
    one tensor (or a dict holding exactly one), finite, of this generator's shape.

    Raises:
        DirectionError: too big, unreadable, not one tensor, not finite, or a shape that is
            not [w_dim], [1, w_dim] or [num_ws, w_dim] of this generator; it names the file.
    """
    what = f"direction {name!r} ({path})" if name else f"direction file {path}"
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DirectionError(f"{what} cannot be read: {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        raise DirectionError(
            f"{what} is {size} bytes; a direction file is at most {MAX_FILE_BYTES}"
        )
    _check_archive(path)
    try:
        data = read_checkpoint(path)
    except CheckpointError as exc:
        raise DirectionError(f"{what}: {exc}") from None
    if isinstance(data, dict):
        tensors = [v for v in data.values() if isinstance(v, Tensor)]
        data = tensors[0] if len(tensors) == 1 and len(data) == 1 else data
    if not isinstance(data, Tensor):
        raise DirectionError(f"{what} must hold one tensor (got {type(data).__name__})")
    if not data.dtype.is_floating_point:
        raise DirectionError(f"{what} must hold floating-point numbers (got {data.dtype})")
    direction = data.detach().float()
    if direction.dim() == 2 and direction.shape[0] == 1:
        direction = direction[0]  # InterfaceGAN's [1, D]
    shape = tuple(direction.shape)
    if shape not in ((w_dim,), (num_ws, w_dim)):
        raise DirectionError(
            f"{what} has shape {list(data.shape)}; this generator needs [{w_dim}] or "
            f"[{num_ws}, {w_dim}] (its W has {w_dim} numbers, {num_ws} W+ entries)"
        )
    if not torch.isfinite(direction).all():
        raise DirectionError(f"{what} holds NaN or infinite numbers")
    return direction.contiguous()


def check_upload(src: Path, dst: Path, w_dim: int, num_ws: int) -> dict[str, object]:
    """Read `src` as a direction of this shape and write the tensor alone to `dst`; the
    JSON answer of the child: {"ok": true, "shape": [...], "sha256": ...} or
    {"ok": false, "error": why} (plus "disk_full": true when `dst` could not be written)."""
    try:
        direction = read_direction(src, w_dim=w_dim, num_ws=num_ws, name="")
    except DirectionError as exc:
        return {
            "ok": False,
            "error": str(exc)
            .replace(f"direction file {src}", "the uploaded direction file")
            .replace(str(src), "the upload"),
        }
    try:
        torch.save(direction, dst)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            return {"ok": False, "error": "the disk is full", "disk_full": True}
        raise
    digest = hashlib.sha256(dst.read_bytes()).hexdigest()
    return {"ok": True, "shape": list(direction.shape), "sha256": digest}


def main(argv: list[str]) -> int:
    src, dst, w_dim, num_ws = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])
    answer = check_upload(src, dst, w_dim, num_ws)
    print(json.dumps(answer))
    return 0 if answer["ok"] else 2


if __name__ == "__main__":  # pragma: no cover - run as a child by the API
    sys.exit(main(sys.argv[1:]))
