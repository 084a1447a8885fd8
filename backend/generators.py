"""The generators a job may start from, as the API sees them (names, no weights).

Reads `stylegan2.registry` (torch-free). Besides registered names the engine accepts
'random-<size>' (a seeded random generator, no download); file paths are the CLI's only.
"""

from __future__ import annotations

from dataclasses import dataclass

from nada.params import ParamError
from stylegan2 import registry

RANDOM_SIZES = registry.RANDOM_SIZES


@dataclass(frozen=True)
class GeneratorEntry:
    name: str
    size: int
    description: str
    url: str | None
    sha256: str | None


def list_generators() -> list[GeneratorEntry]:
    return [
        GeneratorEntry(
            name=g.name, size=g.size, description=g.description, url=g.url, sha256=g.sha256
        )
        for g in registry.list_generators()
    ]


def check_generator_name(name: str) -> str:
    """Return `name` if a job may use it, else raise ParamError listing the known names."""
    try:
        if registry.parse_random_name(name) is not None:
            return name
    except ValueError as exc:  # random-<size> with a size the model cannot have
        raise ParamError("generator", f"is not usable: {exc}") from None
    known = registry.generator_names()
    if name in known:
        return name
    hint = ", ".join([*known, "random-<size>"])
    raise ParamError("generator", f"has unknown name {name!r}; known: {hint}")
