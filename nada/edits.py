"""Latent edits as parameters: "age=2,smile=-1", a direction's name and its strength each.

An edit moves a code in W+ along a direction (InterfaceGAN's boundaries, the layout of the
original StyleGAN-NADA repository's `editing/interfacegan_boundaries/*.pt`):
W+ <- W+ + strength * direction (worker/latent_edits.py). Renders (nada/render_params.py)
and photo edits (nada/photo_params.py) declare one text field each, `edits`, checked here,
so the CLI (`--edit age=2`, repeatable), the API and the page read and refuse it alike; a
video may sweep one edit's strength ("age=-3:3", `EditSweep`).

What a name may be: a direction of the registry (stylegan2/directions.py: age, smile,
pose, ...), or, on the command line only, a path to a direction file. Which names exist is
checked where the registry is known (the API route, the CLI, the worker); here only the
text, the bounds and the count. Stdlib only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from nada.errors import ParamError

MAX_EDITS = 6  # directions applied at once (the original's six); more is a mistake
MAX_STRENGTH = 10.0  # |strength| at most: InterfaceGAN's suggested distances are 2..4
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")  # a registry name (stylegan2/model_files.py)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


@dataclass(frozen=True)
class Edit:
    """One direction and how far to move along it."""

    name: str  # a registry name ('age'), or (CLI only) a path to a direction .pt
    strength: float  # multiples of the direction added to W+; negative goes the other way

    @property
    def is_path(self) -> bool:
        """A file of the command line rather than a registry name: a name with a path
        separator or a file suffix, or one no registry name could be."""
        name = self.name
        return (
            "/" in name
            or "\\" in name
            or name.endswith((".pt", ".pth"))
            or not _NAME.fullmatch(name)
        )


@dataclass(frozen=True)
class EditSweep:
    """A video's edit: the strength moves linearly from `start` (first frame) to `stop`
    (last frame)."""

    name: str
    start: float
    stop: float

    def at(self, frame: int, frames: int) -> Edit:
        """The edit of frame `frame` of `frames` (0-based; the last frame is `stop`)."""
        t = frame / (frames - 1) if frames > 1 else 0.0
        return Edit(self.name, self.start + (self.stop - self.start) * t)


def _strength(field: str, text: str, what: str) -> float:
    if not _NUMBER.fullmatch(text):
        raise ParamError(field, f"need {what} as a number (got {text!r})")
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_STRENGTH:
        raise ParamError(field, f"need {what} in -{MAX_STRENGTH:g}..{MAX_STRENGTH:g} (got {text})")
    return value


def _name(field: str, name: str, *, paths: bool) -> str:
    name = name.strip()
    if not name:
        raise ParamError(field, "each edit needs a direction's name before '=' (e.g. age=2)")
    if _NAME.fullmatch(name) is None and not paths:
        raise ParamError(
            field,
            f"{name!r} is not a direction name (lower-case letters, digits, '.', '_', '-')",
        )
    return name


def parse_edits(text: str, field: str = "edits", *, paths: bool = False) -> tuple[Edit, ...]:
    """Text to edits: 'age=2,smile=-1' -> (Edit('age', 2.0), Edit('smile', -1.0)); '' -> ().

    `paths` lets a name be a file path (the command line's own files). A direction named
    twice is refused (its strengths would add up silently).

    Raises:
        ParamError: naming `field`: a part without '=', a bad name, a strength that is not
            a number or is past MAX_STRENGTH, more than MAX_EDITS, a name given twice.
    """
    if not isinstance(text, str):
        raise ParamError(field, f"must be text like 'age=2,smile=-1' (got {text!r})")
    parts = [part for part in text.split(",") if part.strip()]
    if len(parts) > MAX_EDITS:
        raise ParamError(field, f"must hold 0..{MAX_EDITS} edits (got {len(parts)})")
    edits: list[Edit] = []
    for part in parts:
        name, eq, value = part.rpartition("=")
        if not eq:
            raise ParamError(field, f"{part.strip()!r} must be NAME=STRENGTH (e.g. age=2)")
        name = _name(field, name, paths=paths)
        if any(edit.name == name for edit in edits):
            raise ParamError(field, f"names direction {name!r} twice")
        edits.append(Edit(name, _strength(field, value.strip(), f"the strength of {name!r}")))
    return tuple(edits)


def format_edits(edits: tuple[Edit, ...] | list[Edit]) -> str:
    """The canonical text of `edits` ("age=2,smile=-1.5"): the same edits, the same text
    (a render's cache key reads it)."""
    return ",".join(f"{edit.name}={edit.strength:g}" for edit in edits)


def canonical_edits(text: str, field: str = "edits", *, paths: bool = False) -> str:
    """`text` checked and written canonically; an edit of strength 0 is dropped (it moves
    nothing), so "age=0" asks for the same picture as no edit."""
    edits = [edit for edit in parse_edits(text, field, paths=paths) if edit.strength != 0]
    return format_edits(edits)


def check_edits(name: str, value: object) -> None:
    """The declared check of an `edits` field (nada/declare.py `param(check=...)`). Paths
    pass here, for the command line; the service refuses every name its registry does not
    hold (backend/api/edit_checks.py), and the engine opens only the files its caller hands
    it (worker/latent_edits.py)."""
    parse_edits(value, name, paths=True)  # type: ignore[arg-type]


def parse_sweep(text: str, field: str = "edit_sweep", *, paths: bool = False) -> EditSweep | None:
    """Text to a sweep: 'age=-3:3' -> EditSweep('age', -3.0, 3.0); '' -> None.

    Raises:
        ParamError: naming `field`: not NAME=START:STOP, a bad name or strength.
    """
    if not isinstance(text, str):
        raise ParamError(field, f"must be text like 'age=-3:3' (got {text!r})")
    if not text.strip():
        return None
    name, eq, span = text.rpartition("=")
    start, colon, stop = span.partition(":")
    if not eq or not colon:
        raise ParamError(field, f"{text.strip()!r} must be NAME=START:STOP (e.g. age=-3:3)")
    name = _name(field, name, paths=paths)
    return EditSweep(
        name,
        _strength(field, start.strip(), f"the start of the sweep of {name!r}"),
        _strength(field, stop.strip(), f"the stop of the sweep of {name!r}"),
    )


def check_sweep(name: str, value: object) -> None:
    """The declared check of an `edit_sweep` field (paths pass, as in `check_edits`)."""
    parse_sweep(value, name, paths=True)  # type: ignore[arg-type]


def direction_names(edits: str, sweep: str = "") -> tuple[str, ...]:
    """Every direction `edits` and `sweep` name, in order, each once (what must exist)."""
    names = [edit.name for edit in parse_edits(edits, paths=True)]
    swept = parse_sweep(sweep, paths=True)
    if swept is not None and swept.name not in names:
        names.append(swept.name)
    return tuple(names)
