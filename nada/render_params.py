"""The parameters of a render: a finished adaptation explored through chosen seeds.

A render draws the same latents through the base generator and a job's adapted one, so the
two can be compared image by image (docs/explore.md). Declared like every kind's
parameters, one `param()` per field (nada/declare.py), so one declaration serves the engine
(worker/renders.py), the CLI (`nada generate --base/--mix`, `nada video`: each field's
flag is declared per command), the API (`POST /api/v1/jobs/{id}/renders`,
`GET /api/v1/renders/params`) and the page: `from_dict` validates and every refusal names
its field. Plain Python, no torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from nada import rundir
from nada.declare import Params, check_fields, check_job_id, param, specs
from nada.errors import ParamError
from nada.ids import ID_PATTERN

MODES = ("seeds", "mix", "video")
VIDEO_FORMATS = ("mp4", "gif")
MAX_SEED = 2**31 - 1
_SEED = (0, MAX_SEED)  # each seed of a seed list


def _check_generator(name: str, value: Any) -> None:
    if value is not None and not value:
        raise ParamError(name, f"must be a non-empty string (got {value!r})")


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
        "'video': an interpolation through keyframe seeds",
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

    def __post_init__(self) -> None:
        check_fields(self)

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
# twice finds the first.
MODE_FIELDS: dict[str, tuple[str, ...]] = {
    mode: tuple(spec.name for spec in specs(RenderParams) if spec.decl.group == mode)
    for mode in MODES
}
