"""Uploaded latent edit directions: where POST /directions keeps them, and what the API and
the workers read of them (torch-free).

An upload is `<data_dir>/directions/<name>.pt` (the tensor alone, re-saved by the check in
a limited child: stylegan2/direction_file.py) plus `<name>.json` (its base generator, shape,
sha256, who uploaded it), the .json written last: a name is usable once both exist. A
direction is found in one base generator's W, so its sidecar names that base and edits of
jobs on another base are refused (backend/api/routes/directions.py). Registered directions
(stylegan2/directions.py) and uploads share one namespace: an upload may not take a
registered name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from jobs.generators import UPLOAD_NAME
from nada.errors import ParamError
from stylegan2 import directions as registry


@dataclass(frozen=True)
class UploadedDirection:
    name: str
    base: str  # the generator whose W it is in
    shape: tuple[int, ...]  # [w_dim] or [num_ws, w_dim]
    sha256: str
    path: Path  # the stored tensor
    owner: str | None = None  # the uploading token's name, when tokens are on


def directions_dir(data_dir: Path) -> Path:
    return data_dir / "directions"


def _read(sidecar: Path) -> UploadedDirection | None:
    name = sidecar.stem
    path = sidecar.with_suffix(".pt")
    if not UPLOAD_NAME.fullmatch(name) or not path.is_file():
        return None
    try:
        meta = json.loads(sidecar.read_text())
        base, sha256 = str(meta["base"]), str(meta["sha256"])
        shape = tuple(int(n) for n in meta["shape"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    owner = meta.get("owner")
    return UploadedDirection(
        name, base, shape, sha256, path, owner if isinstance(owner, str) else None
    )


def list_uploaded_directions(data_dir: Path) -> list[UploadedDirection]:
    folder = directions_dir(data_dir)
    found = (_read(sidecar) for sidecar in sorted(folder.glob("*.json"))) if folder.is_dir() else ()
    return [entry for entry in found if entry is not None]


def uploaded_direction(name: str, data_dir: Path) -> UploadedDirection | None:
    """The upload named `name`, or None (also for a name that could not be an upload)."""
    if not UPLOAD_NAME.fullmatch(name):
        return None
    return _read(directions_dir(data_dir) / f"{name}.json")


def check_direction_upload_name(name: str, data_dir: Path) -> str:
    """`name` if a new upload may take it, else ParamError('name') (syntax, a registered
    name) or FileExistsError (another upload has it)."""
    if not UPLOAD_NAME.fullmatch(name):
        raise ParamError("name", "must match [a-z0-9][a-z0-9._-]{0,63}")
    if name in registry.direction_names():
        raise ParamError("name", f"{name!r} is a registered direction (GET /directions)")
    if (directions_dir(data_dir) / f"{name}.pt").exists():
        raise FileExistsError(f"direction {name!r} already exists")
    return name


def direction_files(names: tuple[str, ...], data_dir: Path) -> dict[str, Path]:
    """{name: stored file} of the uploads among `names` (a worker hands these to the
    engine; every other name is a registry direction)."""
    found = {}
    for name in names:
        upload = uploaded_direction(name, data_dir)
        if upload is not None and name not in registry.direction_names():
            found[name] = upload.path
    return found
