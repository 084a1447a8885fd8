"""Kinds of queued GPU work: what the job system needs to know of each, and nothing more.

Claiming, leases, heartbeats, the reaper, cancel, resume and file publishing are the same
for every kind (jobs/leases.py, worker/attempts.py). A kind adds only what differs:

- its parameters: `parse` turns the stored JSON into a validated parameter object (one
  with `to_dict()`), raising ParamError naming the bad field;
- how many steps a job of it runs (`total_steps`: progress, ETA, queue estimates);
- the files a finished job publishes into its run directory (`result_files`, names from
  nada/rundir.py; the first is the result the job's sha256 describes);
- its lane: `train` (minutes to hours: adaptations) or `fast` (seconds: a photo, an
  edit), each a queue of its own so that short work never waits behind a long job on a
  worker that also takes the fast lane (jobs/queue.py, docs/deploy.md); a kind whose
  jobs' length depends on their parameters decides per job (`lane_for`: a long video
  render goes to the train lane);
- and, on the worker's side, its engine call (worker/runners.py, keyed by the same name).

Torch-free: the API validates and queues jobs of every kind without importing an engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nada import rundir
from nada.errors import ParamError
from nada.params import AdaptParams
from nada.photo_params import EditParams, InvertParams
from nada.render_params import RenderParams
from stylegan2 import domains
from stylegan2.registry import RANDOM_SIZES, generator_names, get_generator_info, parse_random_name


class KindParams(Protocol):
    """What every kind's parameter object offers."""

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class JobKind:
    name: str  # stored in jobs.kind; also the key of the worker's runner
    parse: Callable[[dict[str, Any]], KindParams]  # stored params -> validated (ParamError)
    total_steps: Callable[[Any], int]  # steps a job with these params runs
    result_files: tuple[str, ...]  # run-directory names published on success; first = result
    description: str = ""
    lane: str = "train"  # TRAIN or FAST: which queue its jobs go to
    # the lane of one job from its validated params; None: always `lane`
    lane_for: Callable[[Any], str] | None = None

    def job_lane(self, params: Any) -> str:
        """The lane of a job of this kind with these (validated) parameters."""
        return self.lane_for(params) if self.lane_for is not None else self.lane


TRAIN = "train"  # long work: its own queue, settings.queue
FAST = "fast"  # short work (seconds): settings.fast_queue, which a worker of its own takes
LANES = (TRAIN, FAST)

_KINDS: dict[str, JobKind] = {}


def register_kind(kind: JobKind) -> JobKind:
    if kind.name in _KINDS:
        raise ValueError(f"job kind {kind.name!r} is registered already")
    _KINDS[kind.name] = kind
    return kind


def lane_of(kind: str, params: dict[str, Any] | None = None) -> str:
    """The lane of a job of `kind` with the stored `params` (None: the kind's own lane);
    an unknown kind (a newer API's) goes to the train lane, and so do params that no
    longer parse."""
    entry = _KINDS.get(kind)
    if entry is None:
        return TRAIN
    if entry.lane_for is None or params is None:
        return entry.lane
    try:
        return entry.job_lane(entry.parse(params))
    except ParamError:
        return TRAIN


def kinds_never_on(lane: str) -> list[str]:
    """The kinds none of whose jobs go to `lane` (a kind that decides per job may go to
    either); for narrowing a query before lane_of decides."""
    return [k.name for k in _KINDS.values() if k.lane_for is None and k.lane != lane]


def get_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ParamError(
            "kind", f"has unknown value {name!r}; known: {', '.join(_KINDS)}"
        ) from None


def _adapt_steps(params: AdaptParams) -> int:
    return params.steps


ADAPT = register_kind(
    JobKind(
        name="adapt",
        parse=AdaptParams.from_dict,
        total_steps=_adapt_steps,
        # resume.pt: what a continuation of the job starts from (POST /jobs/{id}/continue)
        # domain.pt: a modulation run's domain (parametrization), beside its export
        result_files=(rundir.ADAPTED, rundir.METRICS, rundir.RESUME, rundir.DOMAIN),
        description="fine-tune a generator toward a text (StyleGAN-NADA)",
    )
)


def _invert_steps(params: InvertParams) -> int:
    return params.refine_steps


INVERT = register_kind(
    JobKind(
        name="invert",
        parse=InvertParams.from_dict,
        total_steps=_invert_steps,
        result_files=(rundir.LATENT, rundir.ALIGNED, rundir.RECONSTRUCTION, rundir.INVERSION_INFO),
        description="put a photo into a generator's W+ (align, e4e, refine)",
        lane=FAST,
    )
)


def _one_step(params: Any) -> int:
    """Kinds done in one step (an edit, a ready-made domain)."""
    return 1


EDIT = register_kind(
    JobKind(
        name="edit",
        parse=EditParams.from_dict,
        total_steps=_one_step,
        result_files=(rundir.EDIT,),
        description="render an inverted photo through a finished job's adapted generator",
        lane=FAST,
    )
)


def _render_steps(params: RenderParams) -> int:
    return params.images


# What a render may draw on the fast lane: pictures per generator x the generator's own
# pixels (it draws at its size; max_tile only scales the result down). 100 Mpx is every
# seed or mixing grid, and a video of up to 100 frames at 1024 px (1,600 at 256 px);
# beyond it a render takes minutes and goes to the train lane (docs/explore.md).
FAST_RENDER_PIXELS = 100 * 2**20


def generator_size(name: str | None) -> int:
    """Pixels a side that `name` draws: a registered generator's size, random-<size>'s, and
    for anything else (an uploaded file, unknown to the API) the largest, 1024."""
    largest: int = max(RANDOM_SIZES)
    if not name:
        return largest
    try:
        size = parse_random_name(name)
    except ValueError:
        return largest
    if size is not None:
        return size
    if name in generator_names():
        return get_generator_info(name).size
    return largest


def render_pixels(params: RenderParams) -> int:
    """The pixels a render draws per generator (the lane's budget counts these)."""
    return params.images * generator_size(params.generator) ** 2


def _render_lane(params: RenderParams) -> str:
    return FAST if render_pixels(params) <= FAST_RENDER_PIXELS else TRAIN


# render.png always (the grid; a video's keyframes, source over adapted); a video mode's
# render.mp4 or render.gif beside it (published when present: worker/attempts.py).
RENDER = register_kind(
    JobKind(
        name="render",
        parse=RenderParams.from_dict,
        total_steps=_render_steps,
        result_files=(rundir.RENDER_PNG, rundir.RENDER_MP4, rundir.RENDER_GIF),
        description="draw seeds, style mixing or a video through a finished job's base and "
        "adapted generators",
        lane=FAST,
        lane_for=_render_lane,  # a video over FAST_RENDER_PIXELS: the train lane
    )
)


# -- a ready-made domain (stylegan2/domains.py), made a finished job without training ------


@dataclass(frozen=True)
class DomainParams:
    """A ready-made domain to publish as a job's adapted generator. `generator` is the
    entry's base, filled in from the table (never the client's), so that the follow-ups
    of a finished job (photos, renders) read the base from the params as for an
    adaptation."""

    domain: str  # a name of stylegan2.domains
    generator: str = ""  # the entry's base generator

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DomainParams:
        unknown = sorted(set(data) - {"domain", "generator"})
        if unknown:
            raise ParamError(unknown[0], "is not a parameter of a ready-made domain job")
        name = data.get("domain")
        if not isinstance(name, str) or name not in domains.domain_names():
            raise ParamError(
                "domain", f"has unknown value {name!r}; known: {', '.join(domains.domain_names())}"
            )
        base = domains.get_domain_info(name).base
        if data.get("generator", base) != base:
            raise ParamError("generator", f"of {name} is {base!r} (got {data['generator']!r})")
        return cls(domain=name, generator=base)

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "generator": self.generator}

    def cache_key(self) -> str:
        """One finished job per owner and domain: asking again answers that job."""
        return f"domain:{self.domain}"


# adapted.pt only: no resume.pt, so a continuation is refused (it needs an adaptation's
# optimiser state), and no metrics.jsonl (nothing was trained here).
DOMAIN = register_kind(
    JobKind(
        name="domain",
        parse=DomainParams.from_dict,
        total_steps=_one_step,
        result_files=(rundir.ADAPTED,),
        description="publish a ready-made adapted generator as a finished job (no training)",
        lane=FAST,
    )
)

# The kinds whose finished jobs hold an adapted generator (adapted.pt and the base's name
# in params['generator']): what photos, renders and comparisons draw through.
ADAPTED_KINDS = (ADAPT.name, DOMAIN.name)
