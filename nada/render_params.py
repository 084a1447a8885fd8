"""The parameters of a render: a finished adaptation explored through chosen seeds.

A render draws the same latents through the base generator and a job's adapted one, so the
two can be compared image by image (docs/explore.md). Declared like every kind's
parameters, one `param()` per field (nada/declare.py), so one declaration serves the engine
(worker/renders.py), the CLI (`nada generate --base/--mix`, `nada video`: each field's
flag is declared per command), the API (`POST /api/v1/jobs/{id}/renders`,
`GET /api/v1/renders/params`) and the page: `from_dict` validates and every refusal names
its field. Plain Python, no torch.

Which adapted generator draws: `strength` dials the job's domain (0: the base, 1: the job's
adapted generator, up to MAX_DOMAIN_STRENGTH), the `strength_*` shares scale it per layer group,
and `blend` adds other finished jobs on the same base, each with its own strength: the
weights are base + sum_i strength_i * share(layer) * (adapted_i - base) (worker/blends.py;
docs/explore.md). Mode 'domains' is a video on fixed seeds whose weights move from the base
through this job and then each `blend` job in turn.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from nada import rundir
from nada.declare import Params, check_fields, check_job_id, check_number, param, specs
from nada.edits import MAX_EDITS, MAX_STRENGTH, canonical_edits, check_edits, check_sweep
from nada.errors import ParamError
from nada.ids import ID_PATTERN

MODES = ("seeds", "mix", "video", "domains")
VIDEO_MODES = ("video", "domains")  # the modes that write a video (fps, format, frames)
VIDEO_FORMATS = ("mp4", "gif")
MAX_SEED = 2**31 - 1
_SEED = (0, MAX_SEED)  # each seed of a seed list
MAX_DOMAIN_STRENGTH = 1.5  # a domain's strength: 0 the base, 1 the adapted generator, beyond: more
MAX_BLEND = 3  # other jobs blended into a render (so at most 4 domains, the job's own included)
_STRENGTH = (0.0, MAX_DOMAIN_STRENGTH)
_SHARE = (0.0, 1.0)  # a layer group's share of every domain's strength


def _check_generator(name: str, value: Any) -> None:
    if value is not None and not value:
        raise ParamError(name, f"must be a non-empty string (got {value!r})")


@dataclass(frozen=True)
class BlendPart:
    """One other finished job blended into a render: its adapted generator's difference from
    the base, times `strength`. `job_id` is None on the command line, which names files."""

    job_id: str | None
    strength: float = 1.0


def _blend_parts(name: str, value: Any) -> tuple[BlendPart, ...]:
    """A blend as sent ([{job_id, strength}], JSON's objects) or built (BlendParts), as a
    tuple of BlendParts; ParamError naming `name` for anything else."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ParamError(name, f"must be a list of {{job_id, strength}} objects (got {value!r})")
    parts = []
    for item in value:
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"job_id", "strength"})
            if unknown or "job_id" not in item:
                raise ParamError(name, f"each entry is {{job_id, strength}} (got {sorted(item)})")
            item = BlendPart(item["job_id"], item.get("strength", 1.0))
        if not isinstance(item, BlendPart):
            raise ParamError(name, f"each entry is {{job_id, strength}} (got {item!r})")
        parts.append(item)
    return tuple(parts)


def _check_blend(name: str, value: Any) -> None:
    parts = _blend_parts(name, value)
    if len(parts) > MAX_BLEND:
        raise ParamError(name, f"must hold 0..{MAX_BLEND} jobs (got {len(parts)})")
    for part in parts:
        check_job_id(name, part.job_id)
        check_number(name, part.strength, _STRENGTH)
    ids = [p.job_id for p in parts if p.job_id is not None]
    if len(set(ids)) != len(ids):
        raise ParamError(name, "names a job twice")


@dataclass(frozen=True)
class RenderParams(Params):
    """What to draw through a finished job's base and adapted generators.

    The group of a mode's own fields is the mode's name: a cache key reads only those of
    its mode (MODE_FIELDS), besides the 'render' group's.
    """

    WHAT: ClassVar[str] = "a render"
    GROUPS: ClassVar[Mapping[str, str]] = {
        "render": "What to draw",
        "seeds": "Seeds side by side",
        "mix": "Style mixing",
        "video": "Video",
        "domains": "Video through domains",
    }

    job_id: str | None = param(
        None, help="the finished adaptation job (set by the service from the path; none on "
        "the command line)",
        label="Adaptation job", group="render", server=True, flag={}, pattern=ID_PATTERN,
        check=check_job_id,
    )  # fmt: skip
    generator: str | None = param(
        None, help="the base generator that job adapted (set by the service from the job)",
        label="Base generator", group="render", server=True,
        flag={"video": "--generator", "generate": "--base"}, check=_check_generator,
    )  # fmt: skip
    mode: str = param(
        "seeds", help="'seeds': source over adapted per seed; 'mix': style mixing grids; "
        "'video': an interpolation through keyframe seeds; 'domains': a video on fixed seeds "
        "through the domains (base, this job, each blend job)",
        label="Draw", group="render", choices=MODES, flag={},  # the command decides
    )  # fmt: skip
    seeds: tuple[int, ...] = param(
        (0, 1, 2, 3), help="the seeds to draw, one column each",
        label="Seeds", group="seeds", type="seeds", range=(1, 16), items=_SEED, unit="seeds",
        flag={"generate": "--seeds"},
    )  # fmt: skip
    truncation: float = param(
        0.7, help="psi: 1 draws from the whole distribution, lower is more typical, above 1 "
        "wilder",
        label="Truncation", group="render", range=(0.0, 1.5),
        flag={"video": "--truncation", "generate": "--truncation"},
    )  # fmt: skip
    row_seeds: tuple[int, ...] = param(
        (0, 1, 2), help="mixing: each row's seed gives the coarse styles (pose, shape)",
        label="Row seeds", group="mix", type="seeds", range=(1, 8), items=_SEED, unit="seeds",
        flag={"generate": "--mix"},
    )  # fmt: skip
    column_seeds: tuple[int, ...] = param(
        (3, 4, 5, 6), help="mixing: each column's seed gives the fine styles (colours, texture)",
        label="Column seeds", group="mix", type="seeds", range=(1, 8), items=_SEED,
        unit="seeds", flag={"generate": "--mix"},
    )  # fmt: skip
    crossover: int = param(
        4, help="mixing: the W+ index where the column seed's styles take over (lower: more "
        "from the column); below the generator's number of W+ entries",
        label="Crossover", group="mix", range=(1, 17), flag={"generate": "--crossover"},
    )  # fmt: skip
    keyframes: tuple[int, ...] = param(
        (0, 1, 2), help="video: the seeds the video passes through, in order",
        label="Keyframe seeds", group="video", type="seeds", range=(2, 8), items=_SEED,
        unit="seeds", flag={"video": "--seeds"},
    )  # fmt: skip
    frames: int = param(
        24, help="video: frames from one keyframe to the next",
        label="Frames per transition", group="video", range=(2, 120), unit="frames",
        flag={"video": "--frames"},
    )  # fmt: skip
    fps: int = param(
        24, help="video: frames per second",
        label="Frames per second", group="video", range=(1, 60), flag={"video": "--fps"},
    )  # fmt: skip
    format: str = param(
        "mp4", help="video: 'mp4' (H.264) or 'gif'",
        label="Format", group="video", choices=VIDEO_FORMATS,
        flag={"video": "--out"},  # its suffix
    )  # fmt: skip
    max_tile: int = param(
        256, help="pixels a side of each image at most (larger generators are scaled down)",
        label="Largest tile", group="render", range=(16, 1024), unit="px",
        flag={"video": "--max-tile"},
    )  # fmt: skip
    strength: float = param(
        1.0, help="the domain's strength: 0 draws the base generator, 1 the adapted one (the "
        "job's), in between and beyond interpolate their weights",
        label="Strength", group="render", range=_STRENGTH,
        flag={"video": "--strength", "generate": "--strength"},
    )  # fmt: skip
    strength_coarse: float = param(
        1.0, help="the coarse layers' share of every domain's strength (W+ entries 0-3: "
        "pose, shape); 0 keeps the base's",
        label="Coarse layers", group="render", range=_SHARE,
        flag={"video": "--strength-coarse", "generate": "--strength-coarse"},
    )  # fmt: skip
    strength_medium: float = param(
        1.0, help="the medium layers' share (W+ entries 4-7: features, hair style)",
        label="Medium layers", group="render", range=_SHARE,
        flag={"video": "--strength-medium", "generate": "--strength-medium"},
    )  # fmt: skip
    strength_fine: float = param(
        1.0, help="the fine layers' share (W+ entries 8 and up: colours, texture)",
        label="Fine layers", group="render", range=_SHARE,
        flag={"video": "--strength-fine", "generate": "--strength-fine"},
    )  # fmt: skip
    blend: tuple[BlendPart, ...] = param(
        (), help="other finished jobs on the same base blended in, each {job_id, strength}; "
        "in mode 'domains' the stops after this job",
        label="Blend with", group="render", type="blend", range=(0, MAX_BLEND), unit="jobs",
        flag={"video": "--blend", "generate": "--blend"}, check=_check_blend,
    )  # fmt: skip
    domain_seeds: tuple[int, ...] = param(
        (0, 1, 2), help="domains: the seeds drawn in every frame while the weights move",
        label="Seeds", group="domains", type="seeds", range=(1, 8), items=_SEED,
        unit="seeds", flag={"video": "--domains"},
    )  # fmt: skip
    edits: str = param(
        "", help=f"latent edits applied in W+ before both generators draw: "
        f"'age=2,smile=-1', each a direction's name (GET /api/v1/directions) and its "
        f"strength, -{MAX_STRENGTH:g}..{MAX_STRENGTH:g}; at most {MAX_EDITS}",
        label="Edits", group="render", flag={"generate": "--edit", "video": "--edit"},
        check=check_edits,
    )  # fmt: skip
    edit_sweep: str = param(
        "", help="video: one edit whose strength moves from START at the first frame to "
        "STOP at the last, 'age=-3:3' (the same seed twice as keyframes sweeps one face)",
        label="Edit sweep", group="video", flag={"video": "--edit-sweep"}, check=check_sweep,
    )  # fmt: skip

    def __post_init__(self) -> None:
        object.__setattr__(self, "blend", _blend_parts("blend", self.blend))
        check_fields(self)
        # One text per set of edits ("age=2.0" is "age=2"; strength 0 is no edit), so the
        # same picture asked for again finds the first (cache_key).
        object.__setattr__(self, "edits", canonical_edits(self.edits, paths=True))

    @property
    def total_frames(self) -> int:
        """Video frames: every transition's frames, then the last stop itself (a keyframe;
        in mode 'domains' a domain: the base, this job, each blend job)."""
        stops = len(self.keyframes) if self.mode == "video" else len(self.stops)
        return (stops - 1) * self.frames + 1

    @property
    def stops(self) -> tuple[BlendPart | None, ...]:
        """Mode 'domains': the domains the video passes through, in order: None (the base),
        this job at `strength`, then each blend job at its own."""
        return (None, BlendPart(self.job_id, self.strength), *self.blend)

    @property
    def reweighted(self) -> bool:
        """Whether the adapted side is anything but the job's adapted generator as it is."""
        shares = (self.strength_coarse, self.strength_medium, self.strength_fine)
        return self.strength != 1 or bool(self.blend) or any(s != 1 for s in shares)

    @property
    def images(self) -> int:
        """Pictures drawn per generator: a job's steps (progress, queue estimates)."""
        if self.mode == "seeds":
            return len(self.seeds)
        if self.mode == "mix":
            rows, columns = len(self.row_seeds), len(self.column_seeds)
            return rows + columns + rows * columns
        if self.mode == "domains":  # one generator per frame, drawing every seed
            return self.total_frames * len(self.domain_seeds)
        return self.total_frames

    @property
    def file_name(self) -> str:
        """The run-directory name of the main result (nada/rundir.py's RENDER_*)."""
        if self.mode not in VIDEO_MODES:
            return rundir.RENDER_PNG
        return rundir.RENDER_MP4 if self.format == "mp4" else rundir.RENDER_GIF

    def cache_key(self) -> str:
        """The same picture asked for again has the same key: the job, the generator, and
        only the fields this mode reads."""
        common = (spec.name for spec in specs(RenderParams) if spec.decl.group == "render")
        fields = (*common, *MODE_FIELDS[self.mode])
        data = self.to_dict()
        text = json.dumps({name: data[name] for name in fields}, sort_keys=True)
        return hashlib.sha256(f"render:{text}".encode()).hexdigest()


# The fields each mode reads (their group is the mode's name; besides these, every mode reads
# the 'render' group's): a cache key leaves the others out, so asking for the same picture
# twice finds the first. A domain video is a video: it reads the video's frames, fps, format.
MODE_FIELDS: dict[str, tuple[str, ...]] = {
    mode: tuple(spec.name for spec in specs(RenderParams) if spec.decl.group == mode)
    for mode in MODES
}
MODE_FIELDS["domains"] += ("frames", "fps", "format")
