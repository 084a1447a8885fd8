"""The generators a job may start from, as the API sees them (names, no weights).

Reads `stylegan2.registry` (torch-free). Besides registered names the engine accepts
'random-<size>' (a seeded random generator, no download) and generators uploaded through
POST /generators (validated, re-saved as `<data_dir>/generators/<name>.pt` with a JSON
sidecar `<name>.json`); file paths are the CLI's only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from nada.errors import ParamError
from stylegan2 import registry

RANDOM_SIZES = registry.RANDOM_SIZES
FAMILIES = ("stylegan2", "stylegan3")
UPLOAD_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class GeneratorEntry:
    name: str
    size: int
    description: str
    url: str | None
    sha256: str | None
    source: str = "registry"  # 'upload': stored by POST /generators
    family: str = "stylegan2"  # the architecture ('stylegan2', 'stylegan3')
    domain: str = ""  # what it draws: 'human faces'
    license: str = ""  # of the weights, in a few words
    size_mb: float | None = None  # the download's size; None: not known (or an upload)


def uploads_dir(data_dir: Path) -> Path:
    return data_dir / "generators"


def uploaded_path(name: str, data_dir: Path) -> Path | None:
    """The stored file of uploaded generator `name` under `data_dir`, or None."""
    if not UPLOAD_NAME.fullmatch(name):
        return None
    path = uploads_dir(data_dir) / f"{name}.pt"
    if path.is_file() and path.with_suffix(".json").is_file():
        return path
    return None


def list_uploaded(data_dir: Path) -> list[GeneratorEntry]:
    found = []
    folder = uploads_dir(data_dir)
    for sidecar in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        name = sidecar.stem
        if not UPLOAD_NAME.fullmatch(name) or not (folder / f"{name}.pt").is_file():
            continue
        try:
            meta = json.loads(sidecar.read_text())
            size, sha256 = int(meta["size"]), str(meta["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        owner = meta.get("owner")
        family = meta.get("family") if meta.get("family") in FAMILIES else "stylegan2"
        found.append(
            GeneratorEntry(
                name=name,
                size=size,
                description="uploaded" + (f" by {owner}" if owner else ""),
                url=None,
                sha256=sha256,
                source="upload",
                family=family,  # sidecars before StyleGAN3 uploads have none: StyleGAN2
            )
        )
    return found


def list_generators(data_dir: Path | None = None) -> list[GeneratorEntry]:
    registered = [
        GeneratorEntry(
            name=g.name,
            size=g.size,
            description=g.description,
            url=g.url,
            sha256=g.sha256,
            family=g.family,
            domain=g.domain,
            license=g.license,
            size_mb=g.size_mb,
        )
        for g in registry.list_generators()
    ]
    return registered + (list_uploaded(data_dir) if data_dir is not None else [])


def name_taken(name: str, data_dir: Path) -> bool:
    return name in registry.generator_names() or (uploads_dir(data_dir) / f"{name}.pt").exists()


def check_upload_name(name: str) -> str:
    """Return `name` if a new upload may take it (syntax only), else raise ParamError."""
    if not UPLOAD_NAME.fullmatch(name):
        raise ParamError("name", "must match [a-z0-9][a-z0-9._-]{0,63}")
    if name.startswith(registry.RANDOM_PREFIX):
        raise ParamError("name", f"must not start with {registry.RANDOM_PREFIX!r}")
    return name


def check_generator_name(name: str, data_dir: Path) -> str:
    """Return `name` if a job may use it (registered, random-<size>, or uploaded under
    `data_dir`), else raise ParamError listing the known names."""
    try:
        if registry.parse_random_name(name) is not None:
            return name
    except ValueError as exc:  # random-<size> with a size the model cannot have
        raise ParamError("generator", f"is not usable: {exc}") from None
    known = registry.generator_names()
    if name in known or uploaded_path(name, data_dir) is not None:
        return name
    hint = ", ".join([*known, "random-<size>", "an uploaded name (GET /generators)"])
    raise ParamError("generator", f"has unknown name {name!r}; known: {hint}")


def family_of(name: str, data_dir: Path) -> str:
    """The family of generator `name` ('stylegan2' for random-<size> and unknown names:
    those are refused elsewhere)."""
    for entry in list_generators(data_dir):
        if entry.name == name:
            return entry.family
    return "stylegan2"
