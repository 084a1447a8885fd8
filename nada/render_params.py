"""The parameters of a render: a finished adaptation explored through chosen seeds.

A render draws the same latents through the base generator and a job's adapted one, so the
two can be compared image by image (docs/explore.md). One declaration serves the engine
(worker/renders.py), the CLI (`nada generate`, `nada video`), the API
(`POST /api/v1/jobs/{id}/renders`, `GET /api/v1/renders/params`) and the page, as
`nada.photo_params` does for the photo jobs: `from_dict` validates and every refusal names
its field. Plain Python, no torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from nada import rundir
from nada.errors import ParamError

MODES = ("seeds", "mix", "video")
VIDEO_FORMATS = ("mp4", "gif")
SERVER_SET = ("job_id", "generator")  # set by the service from the job rendered
_ID = re.compile(r"[0-9a-f]{32}")
MAX_SEED = 2**31 - 1

# field -> (min, max): numbers, and for seed lists the number of seeds
RENDER_RANGES: dict[str, tuple[float, float]] = {
    "seeds": (1, 16),
    "truncation": (0.0, 1.5),
    "row_seeds": (1, 8),
    "column_seeds": (1, 8),
    "crossover": (1, 17),
    "keyframes": (2, 8),
    "frames": (2, 120),
    "fps": (1, 60),
    "max_tile": (16, 1024),
}
_SEED_LISTS = ("seeds", "row_seeds", "column_seeds", "keyframes")
_INTS = {"crossover", "frames", "fps", "max_tile"}

# The fields each mode reads (besides job_id, generator, truncation, max_tile): a cache key
# leaves the others out, so asking for the same picture twice finds the first.
MODE_FIELDS: dict[str, tuple[str, ...]] = {
    "seeds": ("seeds",),
    "mix": ("row_seeds", "column_seeds", "crossover"),
    "video": ("keyframes", "frames", "fps", "format"),
}


def _check_seeds(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ParamError(name, f"must be a list of seeds (got {value!r})")
    low, high = RENDER_RANGES[name]
    if not low <= len(value) <= high:
        raise ParamError(name, f"must hold {low:g} to {high:g} seeds (got {len(value)})")
    for seed in value:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ParamError(name, f"seeds must be whole numbers 0..{MAX_SEED} (got {seed!r})")
    return tuple(value)


def _check_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(name, f"must be a number (got {value!r})")
    if name in _INTS and not isinstance(value, int):
        raise ParamError(name, f"must be a whole number (got {value!r})")
    if not math.isfinite(value):
        raise ParamError(name, f"must be finite (got {value!r})")
    low, high = RENDER_RANGES[name]
    if not low <= value <= high:
        raise ParamError(name, f"must be between {low:g} and {high:g} (got {value!r})")


@dataclass(frozen=True)
class RenderParams:
    """What to draw through a finished job's base and adapted generators.

    job_id: the finished adaptation (its adapted.pt); set by the service, None on the CLI.
    generator: the base generator that job adapted (set by the service from the job).
    mode: 'seeds' (source row over adapted row), 'mix' (style mixing grids) or 'video'
        (an interpolation through keyframe seeds, source | adapted side by side).
    seeds: the seeds of mode 'seeds', one column each.
    truncation: psi toward the mean w (1: none; below 1: more typical; above: wilder).
    row_seeds / column_seeds: mode 'mix': each cell takes its coarse styles (W+ entries
        below `crossover`) from its row's seed and the fine ones from its column's seed.
    crossover: the W+ index where the column seed's styles take over (rosinality's
        inject_index); must be below the generator's number of W+ entries.
    keyframes: mode 'video': the seeds the video passes through, in order.
    frames: frames per transition from one keyframe to the next.
    fps: frames per second of the video.
    format: 'mp4' (H.264) or 'gif'.
    max_tile: larger generators' images are scaled down to this many pixels a side.
    """

    job_id: str | None = None
    generator: str | None = None
    mode: str = "seeds"
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    truncation: float = 0.7
    row_seeds: tuple[int, ...] = (0, 1, 2)
    column_seeds: tuple[int, ...] = (3, 4, 5, 6)
    crossover: int = 4
    keyframes: tuple[int, ...] = (0, 1, 2)
    frames: int = 24
    fps: int = 24
    format: str = "mp4"
    max_tile: int = 256

    def __post_init__(self) -> None:
        if self.job_id is not None and not (
            isinstance(self.job_id, str) and _ID.fullmatch(self.job_id)
        ):
            raise ParamError("job_id", f"must be a job id (32 hex digits; got {self.job_id!r})")
        if self.generator is not None and (
            not isinstance(self.generator, str) or not self.generator
        ):
            raise ParamError("generator", f"must be a non-empty string (got {self.generator!r})")
        if self.mode not in MODES:
            raise ParamError("mode", f"must be one of {', '.join(MODES)} (got {self.mode!r})")
        if self.format not in VIDEO_FORMATS:
            raise ParamError(
                "format", f"must be one of {', '.join(VIDEO_FORMATS)} (got {self.format!r})"
            )
        for name in _SEED_LISTS:  # lists from JSON become tuples (hashable, frozen)
            object.__setattr__(self, name, _check_seeds(name, getattr(self, name)))
        for name in RENDER_RANGES:
            if name not in _SEED_LISTS:
                _check_number(name, getattr(self, name))

    @property
    def total_frames(self) -> int:
        """Video frames: every transition's frames, then the last keyframe itself."""
        return (len(self.keyframes) - 1) * self.frames + 1

    @property
    def images(self) -> int:
        """Pictures drawn per generator: a job's steps (progress, queue estimates)."""
        if self.mode == "seeds":
            return len(self.seeds)
        if self.mode == "mix":
            rows, columns = len(self.row_seeds), len(self.column_seeds)
            return rows + columns + rows * columns
        return self.total_frames

    @property
    def file_name(self) -> str:
        """The run-directory name of the main result (nada/rundir.py's RENDER_*)."""
        if self.mode != "video":
            return rundir.RENDER_PNG
        return rundir.RENDER_MP4 if self.format == "mp4" else rundir.RENDER_GIF

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in _SEED_LISTS:
            data[name] = list(data[name])
        return data

    def cache_key(self) -> str:
        """The same picture asked for again has the same key: the job, the generator, and
        only the fields this mode reads."""
        fields = ("job_id", "generator", "mode", "truncation", "max_tile", *MODE_FIELDS[self.mode])
        data = self.to_dict()
        text = json.dumps({name: data[name] for name in fields}, sort_keys=True)
        return hashlib.sha256(f"render:{text}".encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderParams:
        if not isinstance(data, dict):
            raise ParamError("params", f"must be an object (got {type(data).__name__})")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ParamError(unknown[0], "is not a parameter of a render")
        return cls(**data)

    def replace(self, **changes: Any) -> RenderParams:
        return dataclasses.replace(self, **changes)


# One line per field: the CLI's --help, GET /renders/params and the page's hints.
RENDER_HELP: dict[str, str] = {
    "job_id": "the finished adaptation job (set by the server)",
    "generator": "the base generator that job adapted (set by the server)",
    "mode": "'seeds': source over adapted per seed; 'mix': style mixing grids; 'video': an "
    "interpolation through keyframe seeds",
    "seeds": "the seeds to draw, one column each",
    "truncation": "psi: 1 draws from the whole distribution, lower is more typical, above 1 wilder",
    "row_seeds": "mixing: each row's seed gives the coarse styles (pose, shape)",
    "column_seeds": "mixing: each column's seed gives the fine styles (colours, texture)",
    "crossover": "mixing: the W+ index where the column seed's styles take over (lower: more "
    "from the column)",
    "keyframes": "video: the seeds the video passes through, in order",
    "frames": "video: frames from one keyframe to the next",
    "fps": "video: frames per second",
    "format": "video: 'mp4' (H.264) or 'gif'",
    "max_tile": "pixels a side of each image at most (larger generators are scaled down)",
}


def describe_render() -> list[dict[str, Any]]:
    """Every RenderParams field: name, type, default, min, max, choices, help. For seed
    lists min/max count seeds (each seed is 0..2**31-1)."""
    out = []
    for f in dataclasses.fields(RenderParams):
        low, high = RENDER_RANGES.get(f.name, (None, None))
        kind = {"int": "integer", "float": "number"}.get(str(f.type), "string")
        if f.name in _SEED_LISTS:
            kind = "seeds"
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        choices = {"mode": list(MODES), "format": list(VIDEO_FORMATS)}.get(f.name)
        out.append(
            {"name": f.name, "type": kind, "default": default, "min": low, "max": high,
             "choices": choices, "help": RENDER_HELP[f.name]}
        )  # fmt: skip
    return out
