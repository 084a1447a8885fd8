"""The render engine call: a finished adaptation explored through chosen seeds, the base
generator and the adapted one drawing the same latents side by side (docs/explore.md).

    mode 'seeds'  render.png: the source row (base generator) over the adapted row, a column
                  per seed
    mode 'mix'    render.png: two style-mixing grids, the source's over the adapted's; cell
                  (r, c) takes its coarse styles (W+ entries below `crossover`) from row
                  seed r and the rest from column seed c; the top row shows the column seeds,
                  the left column the row seeds
    mode 'video'  render.mp4 or render.gif: a walk through the keyframe seeds, linear in W
                  (after truncation), each frame source | adapted; render.png: the keyframes,
                  source over adapted (the poster)
    mode 'domains' render.mp4 or render.gif: fixed seeds, a row per frame, through weights
                  that move from the base generator through this job's domain and then each
                  blend job's (the original demo's style video); render.png: a row per stop

The adapted side is the job's adapted generator as it is, or, with `strength`, the layer
groups' shares or `blend`, the generator worker/blends.py makes from the base's and the
domains' weights (cached per files and strengths: worker/model_cache.py).

Latent edits ("age=2", nada/edits.py) are added to every W+ both generators draw, each in
its own W (worker/latent_edits.py); a video's `edit_sweep` moves one edit's strength from
its first frame to its last.

Both generators get the same z and the same noise maps for a seed (worker/samples.py:
seeded_inputs), each maps z through its own mapping network and truncates toward its own
mean w, exactly as `nada generate` draws each alone: the source row is the base generator's
own picture of the seed. Progress and cancel speak nada/events.py like every engine call;
a step is one picture per generator (one video frame).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nada import rundir
from nada.errors import InputError, ParamError
from nada.events import CancelCheck, Canceled, Progress, ProgressCallback
from nada.render_params import VIDEO_MODES, RenderParams
from stylegan2.device import prepare, resolve_device
from worker.blends import Mix, between, blended_generator
from worker.latent_edits import LatentEdits, load_edits
from worker.model_cache import ModelCache
from worker.samples import image_grid, seeded_inputs, truncate, write_png
from worker.video import VideoWriter, open_video

__all__ = ["RenderResult", "base_generator_of", "run_render"]

log = logging.getLogger(__name__)

BATCH = 4  # pictures per forward pass (bounds memory at 1024 px)


@dataclass(frozen=True)
class RenderResult:
    image: Path  # render.png: the grid, or a video's keyframes
    video: Path | None  # render.mp4 / render.gif (mode 'video')
    frames: int  # frames in the video (0 without one)
    samples: tuple[()]  # a render writes no progress images
    image_sha256: str  # of render.png (the kind's first result file)


# -- W space ------------------------------------------------------------------------------


def mapped_w(loaded: Any, z: Tensor, truncation: float) -> Tensor:
    """z [N, z_dim] -> truncated w [N, w_dim] on the generator's device: its own mapping,
    toward its own mean w (what Generator.forward does for truncation < 1, and past it for
    truncation > 1). Every family's mapping gives one w per z (W+ repeats it)."""
    device = loaded.latent_avg.device
    w = loaded.contract.map(loaded.generator, z.to(device))[:, 0]
    return truncate(w, loaded.latent_avg.reshape(1, -1), truncation)


def mixed_w_plus(coarse: Tensor, fine: Tensor, crossover: int, num_ws: int) -> Tensor:
    """W+ [N, num_ws, D]: entries below `crossover` from `coarse` [N, D], the rest from
    `fine` [N, D] (rosinality's inject_index; StyleGAN3's layers read the entries alike)."""
    return torch.cat(
        [
            coarse.unsqueeze(1).expand(-1, crossover, -1),
            fine.unsqueeze(1).expand(-1, num_ws - crossover, -1),
        ],
        dim=1,
    )


@torch.no_grad()
def synthesize(loaded: Any, w_plus: Tensor, noise: Sequence[Tensor]) -> Tensor:
    """W+ [N, num_ws, D] with per-layer noise [N, 1, h, w] (StyleGAN3: none) -> images
    [N, 3, H, W] on the CPU."""
    device = loaded.latent_avg.device
    image = loaded.contract.synthesize(
        loaded.generator, w_plus.to(device), [n.to(device) for n in noise]
    )
    return image.float().cpu()


def _batches(n: int) -> Iterator[slice]:
    for start in range(0, n, BATCH):
        yield slice(start, min(start + BATCH, n))


# -- loading ------------------------------------------------------------------------------


def base_generator_of(adapted: Any) -> str | None:
    """The base generator an adapted.pt names in its metadata (its run's params), if any."""
    params = (adapted.metadata or {}).get("params") or {}
    name = params.get("generator") if isinstance(params, dict) else None
    return name if isinstance(name, str) and name else None


# -- the engine call ------------------------------------------------------------------------


class _Run:
    """One render: the two generators, the progress counter, the cancel check."""

    def __init__(self, params: RenderParams, base: Any, adapted: Any, emit: ProgressCallback,
                 cancel: CancelCheck, edits: LatentEdits | None = None):  # fmt: skip
        self.params, self.base, self.adapted = params, base, adapted
        self.edits = edits or LatentEdits()  # latent edits, added to every W+ drawn
        self.emit_to, self.cancel = emit, cancel
        self.done = 0

    def event(self, kind: str, stage: str) -> None:
        self.emit_to(
            Progress(kind=kind, stage=stage, step=self.done, total_steps=self.params.images)
        )

    def advance(self, pictures: int) -> None:
        self.done += pictures
        self.event("step", "rendering")
        if self.cancel():
            raise Canceled(f"canceled after {self.done} of {self.params.images} pictures")

    def draw(self, w_of: Callable[[Any], Tensor], noise: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """The same pictures through both generators: (source, adapted), each [N, 3, H, W];
        `w_of(loaded)` gives the W+ [N, num_ws, D] in that generator's W space."""
        images = []
        for loaded in (self.base, self.adapted):
            w_plus = self.edits.apply(w_of(loaded))
            parts = [
                synthesize(loaded, w_plus[part], [n[part] for n in noise])
                for part in _batches(w_plus.shape[0])
            ]
            images.append(torch.cat(parts))
        self.advance(images[0].shape[0])
        return images[0], images[1]

    def seeds(self) -> list[Tensor]:
        """Two rows: source over adapted."""
        p = self.params
        z, noise = seeded_inputs(p.seeds, self.base.generator)
        rows: list[list[Tensor]] = [[], []]
        for part in _batches(len(p.seeds)):
            source, adapted = self.draw(self._own(z[part]), [n[part] for n in noise])
            rows[0].append(source)
            rows[1].append(adapted)
        return [torch.cat(row) for row in rows]

    def mix(self) -> list[Tensor]:
        """Per generator: a header row (blank corner, the column seeds), then per row seed
        its own picture and its mixes with every column seed."""
        p = self.params
        num_ws = self.base.num_ws
        if p.crossover >= num_ws:
            raise ParamError(
                "crossover",
                f"must be below this generator's {num_ws} W+ entries (got {p.crossover})",
            )
        z_rows, noise_rows = seeded_inputs(p.row_seeds, self.base.generator)
        z_cols, noise_cols = seeded_inputs(p.column_seeds, self.base.generator)
        cols = len(p.column_seeds)
        header = self.draw(self._own(z_cols), noise_cols)
        grids: list[list[Tensor]] = [[], []]
        for which in (0, 1):
            blank = torch.ones_like(header[which][:1])
            grids[which].append(torch.cat([blank, header[which]]))
        for r in range(len(p.row_seeds)):
            own = self.draw(self._own(z_rows[r : r + 1]), [n[r : r + 1] for n in noise_rows])

            def cells(g: Any, r: int = r) -> Tensor:
                coarse = mapped_w(g, z_rows[r : r + 1], p.truncation).expand(cols, -1)
                return mixed_w_plus(coarse, mapped_w(g, z_cols, p.truncation), p.crossover,
                                    num_ws)  # fmt: skip

            # Fine styles and noise (per-pixel detail) from the column seed.
            mixed = self.draw(cells, noise_cols)
            for which in (0, 1):
                grids[which].append(torch.cat([own[which], mixed[which]]))
        return grids[0] + grids[1]

    def video(self, writer: VideoWriter) -> list[Tensor]:
        """Write every frame (source | adapted); return the keyframes' two rows."""
        p = self.params
        z, noise = seeded_inputs(p.keyframes, self.base.generator)
        still = [n[:1] for n in noise]  # the first keyframe's noise throughout: no flicker
        key_w = {id(g): mapped_w(g, z, p.truncation) for g in (self.base, self.adapted)}
        steps = torch.arange(p.total_frames, dtype=torch.float64) / p.frames
        keys: list[list[Tensor]] = [[], []]
        for part in _batches(p.total_frames):
            t = steps[part]
            index = t.floor().long().clamp(max=len(p.keyframes) - 2)  # the transition
            frac = (t - index).float()

            def lerp(g: Any, index: Tensor = index, frac: Tensor = frac,
                     frames: range = range(part.start, part.stop)) -> Tensor:  # fmt: skip
                w = key_w[id(g)]
                f = frac.to(w.device).unsqueeze(1)
                w_plus = self._repeat(g, torch.lerp(w[index], w[index + 1], f))
                return self.edits.apply_sweep(w_plus, frames, p.total_frames)

            source, adapted = self.draw(lerp, [n.expand(len(t), -1, -1, -1) for n in still])
            for i, frame in enumerate(range(part.start, part.stop)):
                pair = torch.stack([source[i], adapted[i]])
                writer.append(image_grid([pair], max_tile=p.max_tile))
                if frame % p.frames == 0:
                    keys[0].append(source[i : i + 1])
                    keys[1].append(adapted[i : i + 1])
        return [torch.cat(row) for row in keys]

    def domains(self, writer: VideoWriter, domains: Sequence[Any]) -> list[Tensor]:
        """Mode 'domains': every frame the seeds (their own noise, fixed) through one
        generator whose strengths move linearly from stop to stop: the base (every strength
        0), this job's domain at `strength`, each blend job's at its own; return a row per
        stop (the poster)."""
        p = self.params
        z, noise = seeded_inputs(p.domain_seeds, self.base.generator)
        strengths = (p.strength, *(part.strength for part in p.blend))
        n = len(domains)
        stops = [(0.0,) * n] + [tuple(s if i == k else 0.0 for i in range(n))
                                for k, s in enumerate(strengths)]  # fmt: skip
        work: Any = None  # one module, overwritten frame by frame
        rows: list[Tensor] = []
        for frame in range(p.total_frames):
            index = min(frame // p.frames, len(stops) - 2)  # the transition
            t = frame / p.frames - index  # exactly 0 at a stop, 1 at the last frame
            mix = _mix(p, between(stops[index], stops[index + 1], t))
            g = blended_generator(self.base, domains, mix, into=work)
            work = g
            w_plus = self.edits.apply(self._own(z)(g))
            images = torch.cat([synthesize(g, w_plus[part], [m[part] for m in noise])
                                for part in _batches(len(p.domain_seeds))])  # fmt: skip
            writer.append(image_grid([images], max_tile=p.max_tile))
            if frame % p.frames == 0:
                rows.append(images)
            self.advance(len(p.domain_seeds))
        return rows

    def _own(self, z: Tensor) -> Callable[[Any], Tensor]:
        """g -> the W+ of z's own pictures in generator g (every entry the same w)."""
        truncation = self.params.truncation

        def w_plus(g: Any) -> Tensor:
            return self._repeat(g, mapped_w(g, z, truncation))

        return w_plus

    @staticmethod
    def _repeat(loaded: Any, w: Tensor) -> Tensor:
        return w.unsqueeze(1).expand(-1, loaded.num_ws, -1)


def _mix(params: RenderParams, strengths: Sequence[float]) -> Mix:
    return Mix(tuple(strengths), params.strength_coarse, params.strength_medium,
               params.strength_fine)  # fmt: skip


def _adapted_side(params: RenderParams, base: Any, domains: Sequence[Any], models: ModelCache,
                  sources: Sequence[str], device: torch.device) -> Any:  # fmt: skip
    """What draws the adapted row: the job's adapted generator itself at strength 1 with no
    blend (and the base itself at strength 0), else their blend, made once per files and
    strengths (worker/blends.py). A domain video blends frame by frame instead."""
    if not params.reweighted or params.mode == "domains":
        return domains[0]
    mix = _mix(params, (params.strength, *(part.strength for part in params.blend)))
    if not any(mix.strengths):
        return base
    return models.blend(sources, mix.key, device,
                        lambda: blended_generator(base, domains, mix))  # fmt: skip


def run_render(
    params: RenderParams,
    out_dir: Path,
    *,
    checkpoint_path: Path | str,
    generator_path: Path | str | None = None,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    resume_from: Path | None = None,
    models: ModelCache | None = None,
    direction_files: Mapping[str, Path] | None = None,
    blend_paths: Sequence[Path | str] = (),
) -> RenderResult:
    """Draw `params` through the base generator and the adapted one (`checkpoint_path`, a
    job's adapted.pt or any generator) into out_dir/render.png (+ the video).

    The base generator is `generator_path` (an uploaded file), else `params.generator`, else
    the one the adapted checkpoint's metadata names. Events: stage loading, a 'step' per
    picture pair (video frame), stage saving. `resume_from` is ignored (seconds of work).
    `params.edits` (and a video's `edit_sweep`) move every W+ before both generators draw
    (worker/latent_edits.py); `direction_files` maps an edit's name to the caller's own
    file (the CLI's paths), every other name is a registry direction. `blend_paths` are the
    adapted generators of `params.blend`, in its order (worker/blends.py).

    Raises:
        ParamError: crossover past the generator's W+ entries; no base generator known.
        InputError: the generators (base, adapted, blended) are not the same model.
        Canceled: should_cancel returned True; nothing final was written.
        stylegan2.CheckpointError: a bad checkpoint file.
    """
    del resume_from
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    emit = on_progress or (lambda event: None)
    cancel = should_cancel or (lambda: False)
    dev = resolve_device(device)
    prepare()
    models = models or ModelCache()  # a caller without a cache: loaded for this call

    emit(Progress(kind="stage", stage="loading", step=0, total_steps=params.images))
    adapted = models.generator(str(checkpoint_path), dev)
    source = generator_path or params.generator or base_generator_of(adapted)
    if source is None:
        raise ParamError("generator", "is required: the adapted checkpoint does not name its base")
    base = models.generator(str(source), dev)
    if base.resolution != adapted.resolution:
        raise InputError(
            f"the base generator draws {base.resolution} px and the adapted one "
            f"{adapted.resolution} px: they are not the same model"
        )
    if base.family != adapted.family:
        raise InputError(
            f"the base generator is a {base.family} and the adapted one a {adapted.family}: "
            "they are not the same model"
        )
    if len(blend_paths) != len(params.blend):
        raise ParamError("blend", f"names {len(params.blend)} jobs; {len(blend_paths)} files came")
    domains = [adapted, *(models.generator(str(path), dev) for path in blend_paths)]
    for path, other in zip(blend_paths, domains[1:], strict=True):
        if (other.family, other.resolution) != (base.family, base.resolution):
            raise ParamError("blend", f"{path} is a {other.family} of {other.resolution} px, "
                             f"the base a {base.family} of {base.resolution} px: not its model")  # fmt: skip
    sources = [str(source), str(checkpoint_path), *map(str, blend_paths)]
    adapted = _adapted_side(params, base, domains, models, sources, dev)
    edits = load_edits(
        params.edits,
        params.edit_sweep if params.mode == "video" else "",
        generator=params.generator or str(source),
        w_dim=base.w_dim,
        num_ws=base.num_ws,
        files=direction_files,
    )
    run = _Run(params, base, adapted, emit, cancel, edits)
    if cancel():
        raise Canceled("canceled before rendering")
    run.event("stage", "rendering")
    video: Path | None = None
    if params.mode in VIDEO_MODES:
        video = out_dir / params.file_name
        with open_video(video, params.fps, params.format) as writer:
            rows = run.video(writer) if params.mode == "video" else run.domains(writer, domains)
            run.event("stage", "saving")  # the block's end finishes the file
    else:
        rows = run.seeds() if params.mode == "seeds" else run.mix()
        run.event("stage", "saving")
    image = out_dir / rundir.RENDER_PNG
    write_png(image, image_grid(rows, max_tile=params.max_tile))
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    of = f"job {params.job_id}" if params.job_id else str(checkpoint_path)  # the CLI: a file
    log.info("render (%s) of %s: %s", params.mode, of, video or image)
    return RenderResult(
        image=image,
        video=video,
        frames=params.total_frames if video is not None else 0,
        samples=(),
        image_sha256=digest,
    )
