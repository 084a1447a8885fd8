"""The adaptation engine: `run_adaptation` turns a base generator and two prompts into an
adapted generator (StyleGAN-NADA, Gal et al., 2021).

One step (sec. 3 of the paper, defaults from appendix I):
  1. every `reselect_every` steps, pick the k layers to train (`worker.layers`, sec. 3.3);
  2. map a batch of z through the frozen mapping network to W+ (optionally style-mixed);
  3. render it with the frozen generator (no graph) and the trainable one, same noise;
  4. CLIP loss (`worker.clip_loss`) on what CLIP may see of them (a letterboxed generator's
     content box), backward, Adam (lr 0.002, betas (0, 0.99)) over the selected layers only
     -- their weights, or with parametrization 'modulation' their style vectors on the
     frozen weights (HyperDomainNet; worker/modulation.py, the result a domain.pt too).

Every family (StyleGAN2, StyleGAN3) goes through its contract, stylegan2/family.py: mapping,
synthesis, noise, trainable groups and checkpoint layout; nothing here branches on it.

Every random draw of step s comes from an RNG seeded by (seed, s), so a run resumed from an
intermediate checkpoint continues exactly as the uninterrupted run would have.

This module drives a run and reports its progress: `_Adaptation` holds one run's models,
optimizer and state, `run_adaptation` sets the run up (`_start`: a new run, a resumed one or
a continuation), hands it to the step loop (`_train`) and saves it (`_save`). The math
lives in clip_loss.py and layers.py, the models shared between jobs in model_cache.py,
intermediate checkpoints and resume in checkpoints.py. No Celery or web imports: the CLI and
the Celery task both call `run_adaptation`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import platform
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import open_clip
import torch
from torch import Tensor, nn

import stylegan2
from nada import __version__ as nada_version
from nada import rundir
from nada.errors import ParamError
from nada.params import AdaptParams
from stylegan2.device import prepare, resolve_device, retain_freed_memory
from stylegan2.domain_file import save_domain
from stylegan2.family import crop_to_content, family_of
from worker.checkpoints import (
    ResumeError,
    read_resume_point,
    read_start_point,
    truncate_metrics,
    write_intermediate_checkpoint,
)
from worker.clip_loss import ClipGuide
from worker.clip_models import canonical_clip_name, check_clip_name
from worker.domain_embeddings import check_domain_images, domain_guidance, domain_record
from worker.events import AdaptResult, CancelCheck, Canceled, Progress, ProgressCallback
from worker.layers import candidate_layers, layer_parameters, select_layers, set_trainable
from worker.model_cache import ModelCache
from worker.modulation import StyleModulation, select_modulated_layers
from worker.samples import image_grid, noise_shapes, random_noise, render, write_png
from worker.scores import LossAverage, ScoreEvaluator

# Re-exported: callers (worker.tasks, worker.cli, bench/) import these from worker.engine.
__all__ = [
    "ModelCache",
    "ResumeError",
    "resolve_device",
    "retain_freed_memory",
    "run_adaptation",
    "sample_wplus",
    "step_rng",
]

log = logging.getLogger(__name__)

ADAM_BETAS = (0.0, 0.99)  # appendix I; floats: torch refuses a mix of int and float
SAMPLE_MAX_TILE = 256  # progress samples are for judging, not for keeping: cap tile size


# -- per-step randomness ------------------------------------------------------------------


def step_rng(seed: int, step: int, stream: str) -> torch.Generator:
    """A CPU RNG for one purpose ('train', 'probe', 'samples') of one step, independent of
    every other: what step s draws does not depend on the steps before it."""
    digest = hashlib.blake2b(f"{seed}/{step}/{stream}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


@torch.no_grad()
def sample_wplus(generator: nn.Module, batch: int, mixing: float, rng: torch.Generator) -> Tensor:
    """W+ codes [batch, num_ws, w_dim] on the generator's device: z ~ N(0, I) through the
    (frozen) mapping network, with style mixing at a random crossover in 1..num_ws - 1 with
    probability `mixing` (rosinality's mixing_noise, made deterministic), for every family."""
    family = family_of(generator)
    device = next(generator.parameters()).device
    num_ws, z_dim = family.num_ws(generator), family.z_dim(generator)
    z = torch.randn(batch, z_dim, generator=rng)
    wplus = family.map(generator, z.to(device))  # [batch, num_ws, w_dim]
    if mixing > 0 and float(torch.rand((), generator=rng)) < mixing:
        z2 = torch.randn(batch, z_dim, generator=rng)
        crossover = int(torch.randint(1, num_ws, (), generator=rng))
        wplus[:, crossover:] = family.map(generator, z2.to(device))[:, crossover:]
    return wplus


# -- the run ------------------------------------------------------------------------------


@dataclass
class _State:
    """What changes as a run proceeds (and what an intermediate checkpoint must restore)."""

    step: int = 0  # training steps completed
    selected: tuple[str, ...] = ()  # layers trained in the last step
    selections: dict[str, list[str]] = field(default_factory=dict)  # sample step -> layers
    samples: list[Path] = field(default_factory=list)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # sample step -> scores


class _Adaptation:
    """One job's models, optimizer and state; `run_adaptation` drives it."""

    def __init__(
        self,
        params: AdaptParams,
        out_dir: Path,
        device: torch.device,
        models: ModelCache,
        generator_source: str,
        domain_images: Mapping[str, Path] | None = None,
    ):
        self.params = params
        self.out_dir = out_dir
        self.device = device
        for spec in params.clip_models:  # refuse a bad name before loading anything
            check_clip_name(spec.name)
        if params.score_clip_model:
            try:
                check_clip_name(params.score_clip_model)
            except ParamError as exc:
                raise ParamError("score_clip_model", exc.message) from None
        domain_files = check_domain_images(params, domain_images)  # and an unusable image
        base = models.generator(generator_source, device)
        self.identity = dict(base.identity)
        if not self.identity.get("name"):
            self.identity["name"] = params.generator
        self.latent_avg = base.latent_avg
        self.frozen = base.generator  # shared with the cache: never trained
        self.family = family_of(self.frozen)  # the same contract for the trainable copy
        # A letterboxed generator's content (LoadedGenerator.content_box): CLIP sees it only.
        self.content_box = getattr(base, "content_box", None)
        self.candidates = candidate_layers(self.frozen, params.include_torgb)
        # 'modulation' trains one style vector per candidate layer on the frozen weights
        # (worker/modulation.py): the trainable generator is a view of them, no copy.
        self.modulation: StyleModulation | None = None
        if params.parametrization == "modulation":
            self.modulation = StyleModulation(self.frozen, self.candidates)
            self.trainable: nn.Module = self.modulation.view
            trained = self.modulation.parameters()
        else:
            self.trainable = copy.deepcopy(self.frozen)
            trained = layer_parameters(self.trainable, self.candidates)
        self.optimizer = torch.optim.Adam(trained, lr=params.lr, betas=ADAM_BETAS)
        clips = [
            (models.clip(spec.name, device, seed=params.seed), spec.weight)
            for spec in params.clip_models
            if spec.weight > 0
        ]
        self.guidance = None  # an image-guided job's (ΔT, T) per CLIP model, computed once
        if params.target_images:
            self.guidance = domain_guidance(
                [clip for clip, _ in clips], params, domain_files, self.frozen, self.latent_avg,
                content_box=self.content_box,
            )  # fmt: skip
        self.guide = ClipGuide(
            clips,
            params.source_text,
            params.target_text,
            params.lambda_direction,
            params.lambda_global,
            guidance=self.guidance,
        )
        self.clip_names = [canonical_clip_name(spec.name) for spec in params.clip_models]
        # The extra scoring model (score_clip_model): loaded with the others so that a model
        # that cannot load fails the job before training, not at its first sample step.
        self._judges = (
            [models.clip(params.score_clip_model, device, seed=params.seed)]
            if params.score_clip_model
            else []
        )
        self._judge_guidance = (
            domain_guidance(
                self._judges,
                params,
                domain_files,
                self.frozen,
                self.latent_avg,
                content_box=self.content_box,
            )
            if self.guidance is not None and self._judges
            else {}
        )
        self.state = _State()
        self.continued_from: dict[str, Any] | None = None  # the finished run this one continues
        self._noise_shapes = noise_shapes(self.frozen)
        rng = step_rng(params.seed, 0, "samples")
        z_dim = self.family.z_dim(self.frozen)
        self._sample_z = torch.randn(params.n_samples, z_dim, generator=rng)
        self._sample_noise = random_noise(self._noise_shapes, params.n_samples, rng)
        self._source_row: Tensor | None = None
        self._clips = [clip for clip, _ in clips]
        self._scorer: ScoreEvaluator | None = None  # built at the first measured step
        self.loss_average = LossAverage()

    # selection and training

    @property
    def selects(self) -> bool:
        """Whether a probe picks the layers (False: k = 0 or k >= candidates: train all)."""
        return 0 < self.params.layers < len(self.candidates)

    def _noise(self, batch: int, rng: torch.Generator) -> list[Tensor]:
        return [n.to(self.device) for n in random_noise(self._noise_shapes, batch, rng)]

    def clip_view(self, images: Tensor) -> Tensor:
        """What CLIP sees of rendered images (the loss, the probe, the scores): the content
        box of a letterboxed generator, else the whole picture."""
        return crop_to_content(images, self.content_box)

    def _probe_loss(self, images: Tensor) -> Tensor:
        return self.guide.global_loss(self.clip_view(images))

    def select(self, step: int) -> tuple[str, ...]:
        p = self.params
        if not self.selects:
            return self.candidates
        rng = step_rng(p.seed, step, "probe")
        wplus = sample_wplus(self.frozen, p.probe_batch, 0.0, rng)
        if self.modulation is not None:  # the k layers whose vectors train
            return select_modulated_layers(
                p.selection, self.modulation, p.layers, wplus, self._probe_loss,
                probe_steps=p.probe_steps, noise=self._noise(p.probe_batch, rng),
                chunk=p.batch_size,
            )  # fmt: skip
        selection = select_layers(
            p.selection,
            self.trainable,
            self.candidates,
            p.layers,
            wplus,
            self._probe_loss,
            probe_steps=p.probe_steps,
            noise=self._noise(p.probe_batch, rng),
            chunk=p.batch_size,  # the probe's peak memory is a training step's
        )
        return selection.layers

    def train_step(self, step: int) -> dict[str, float]:
        p = self.params
        rng = step_rng(p.seed, step, "train")
        wplus = sample_wplus(self.frozen, p.batch_size, p.mixing, rng)
        noise = self._noise(p.batch_size, rng)
        if self.modulation is not None:
            self.modulation.set_trainable(self.state.selected)
        else:
            set_trainable(self.trainable, self.state.selected)
        with torch.no_grad():
            frozen_images = self.family.synthesize(self.frozen, wplus, noise)
        adapted_images = self.family.synthesize(self.trainable, wplus, noise)
        losses = self.guide.losses(self.clip_view(adapted_images), self.clip_view(frozen_images))
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        # Unselected parameters have grad None, and Adam skips those entirely: no decay of
        # old moments, no update from them, so they stay bit-for-bit unchanged.
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {name: float(value.detach()) for name, value in losses.items()}

    # outputs

    def write_sample(self, step: int) -> Path:
        p = self.params
        args: dict[str, Any] = dict(
            truncation=p.sample_truncation,
            truncation_latent=self.latent_avg,
            batch_size=p.batch_size,
        )
        if self._source_row is None:
            self._source_row = render(self.frozen, self._sample_z, self._sample_noise, **args)
        if step == 0:  # nothing trained yet: the adapted row is the source row
            adapted = self._source_row
        else:
            adapted = render(self.trainable, self._sample_z, self._sample_noise, **args)
        grid = image_grid([self._source_row, adapted], max_tile=SAMPLE_MAX_TILE)
        return write_png(rundir.sample_path(self.out_dir, step), grid)

    def scores(self, step: int) -> dict[str, float]:
        """The objective scores now (worker/scores.py) on `score_latents` held-out latents
        (their own seed stream, not the training or sample latents); {} when switched off."""
        p = self.params
        if p.score_latents == 0:
            return {}
        args: dict[str, Any] = dict(
            truncation=p.sample_truncation,
            truncation_latent=self.latent_avg,
            batch_size=max(p.batch_size, 4),
        )
        if self._scorer is None:
            rng = step_rng(p.seed, 0, "scores")
            z_dim = self.family.z_dim(self.frozen)
            self._score_z = torch.randn(p.score_latents, z_dim, generator=rng)
            self._score_noise = random_noise(self._noise_shapes, p.score_latents, rng)
            source = render(self.frozen, self._score_z, self._score_noise, **args)
            self._score_source = source
            guidance = {**self.guidance, **self._judge_guidance} if self.guidance else None
            self._scorer = ScoreEvaluator(
                self._clips,
                p.source_text,
                p.target_text,
                self.clip_view(source),
                guidance=guidance,
                judges=self._judges,
            )
        adapted = (
            self._score_source
            if step == 0  # nothing trained yet
            else render(self.trainable, self._score_z, self._score_noise, **args)
        )
        values = self._scorer.evaluate(self.clip_view(adapted))
        if self.loss_average.value is not None:
            values["loss"] = self.loss_average.value
        self.state.scores[str(step)] = values
        return values

    def metadata(self) -> dict[str, Any]:
        """What the adapted checkpoint says about itself (plain data)."""
        lineage = {"continued_from": self.continued_from} if self.continued_from else {}
        if self.guidance is not None:  # the example images' names and what CLIP made of them
            lineage["domain"] = domain_record(self.params, self.guidance)
        return {
            **lineage,
            "kind": "stylegan-nada",
            "source_text": self.params.source_text,
            "target_text": self.params.target_text,
            "params": self.params.to_dict(),
            "steps_done": self.state.step,
            "clip_models": self.clip_names,
            "selected_layers": dict(self.state.selections),
            "scores": dict(self.state.scores),  # by sample step: worker/scores.py
            "candidate_layers": list(self.candidates),
            "base": {k: v for k, v in self.identity.items()},
            "versions": {
                "nada": nada_version,
                "torch": str(torch.__version__),  # a str subclass: not plain data
                "open_clip": str(open_clip.__version__),
                "python": platform.python_version(),
            },
        }

    def weights(self) -> nn.Module:
        """The adapted generator as full weights: the trainable copy, or a modulation run's
        vectors baked into the base's affines (stylegan2/domain_modulation.py)."""
        return self.modulation.baked() if self.modulation is not None else self.trainable

    def _vectors(self) -> dict[str, Tensor] | None:
        return self.modulation.state() if self.modulation is not None else None

    def write_domain(self, path: Path) -> Path:
        """OUT/domain.pt of a modulation run: its vectors, the base's identity, the run's
        metadata (stylegan2/domain_file.py)."""
        assert self.modulation is not None
        save_domain(path, self.modulation.domain(self.identity, self.metadata()))
        return path

    def write_checkpoint(self, path: Path) -> Path:
        """An intermediate checkpoint of this run (worker.checkpoints)."""
        return write_intermediate_checkpoint(
            path,
            self.weights(),
            self.latent_avg,
            self.metadata(),
            step=self.state.step,
            selected=self.state.selected,
            optimizer=self.optimizer,
            modulation=self._vectors(),
        )

    def write_resume_point(self, path: Path, checkpoint_sha256: str) -> Path:
        """OUT/resume.pt of a finished run: what a continuation starts from (the weights
        again, so that it stands alone, with Adam's moments and the step)."""
        return write_intermediate_checkpoint(
            path,
            self.weights(),
            self.latent_avg,
            self.metadata(),
            step=self.state.step,
            selected=self.state.selected,
            optimizer=self.optimizer,
            checkpoint_sha256=checkpoint_sha256,
            modulation=self._vectors(),
        )

    def restore(self, path: Path, *, continuation: bool = False) -> None:
        """Continue from an intermediate checkpoint written by `write_checkpoint`, or with
        `continuation` from a finished run's resume.pt (`write_resume_point`): the same
        weights and Adam moments, so the steps to come are the ones an uninterrupted run of
        the summed steps would take -- unless the continuation changed how they train."""
        if continuation:
            point = read_start_point(path, self.params, self.identity)
        else:
            point = read_resume_point(path, self.params, self.identity)
        if self.modulation is None:
            self.trainable.load_state_dict(point.generator_state, strict=True)
        elif point.modulation is None:  # (the parametrization is a parameter: checked)
            raise ResumeError(f"{path} holds no modulation vectors")
        else:  # the view shares the frozen weights: only the vectors are the run's
            self.modulation.load_state(point.modulation)
        self.optimizer.load_state_dict(point.optimizer_state)
        self.state.step = point.step
        self.state.selected = point.selected
        if continuation:
            for group in self.optimizer.param_groups:  # the state dict brought the old lr
                group["lr"] = self.params.lr
            if point.params.get("layers") != self.params.layers:
                self.state.selected = ()  # k changed: select again at the first step
            self.continued_from = {"step": point.step, "sha256": point.checkpoint_sha256}
        else:  # this run's own checkpoint: it continues what this run continued
            self.continued_from = point.continued_from
        self.state.selections = dict(point.selections)
        self.state.scores = dict(point.scores)
        self.state.samples = [
            rundir.sample_path(self.out_dir, s)
            for s in range(self.state.step + 1)
            if rundir.sample_path(self.out_dir, s).is_file()
        ]


def run_adaptation(
    params: AdaptParams,
    out_dir: Path,
    *,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    resume_from: Path | None = None,
    models: ModelCache | None = None,
    generator_path: Path | None = None,
    start_from: Path | None = None,
    domain_images: Mapping[str, Path] | None = None,
) -> AdaptResult:
    """Adapt `params.generator` from `params.source_text` to `params.target_text`.

    Args:
        params: the job (validated on construction).
        out_dir: receives adapted.pt, resume.pt (what a continuation starts from),
            samples/step_XXXXXX.png, metrics.jsonl, params.json and, with checkpoint_every,
            checkpoints/step_XXXXXX.pt; with snapshot_every, snapshots/step_XXXXXX.pt (the
            same layout; every snapshot step is sampled and scored too, the final step is
            adapted.pt + resume.pt).
        device: 'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:1', ...
        on_progress: receives Progress events (stages, every step, samples, checkpoints,
            snapshots).
        should_cancel: polled before every step and before saving; True raises Canceled and
            leaves no adapted.pt.
        resume_from: an intermediate checkpoint of the same job to continue from.
        start_from: a finished run's resume.pt to continue (a new run whose params.steps is
            the total: its steps are numbered after the finished run's). The same job but
            for lr, layers, lambda_direction, lambda_global, reselect_every and the output
            settings. resume_from, when given too, wins (this run's own later checkpoint).
        models: a ModelCache to reuse models across jobs (a fresh one if None).
        generator_path: a local file holding params.generator (the worker resolves registry
            names itself); its name stays params.generator in the metadata.
        domain_images: the file of each example image params.target_images/source_images
            name (nada.rundir.domain_image_path); each is checked against its name first.

    Returns:
        AdaptResult with the paths written and the checkpoint's sha256.

    Raises:
        Canceled: should_cancel returned True.
        nada.params.ParamError: a prompt too long for CLIP, an unknown CLIP model.
        invert.photos.PhotoRejected: an example image missing or not what its name says.
        ResumeError: resume_from or start_from is not a point this run can continue from.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    event = _Events(on_progress or (lambda event: None), params.steps)
    cancel = should_cancel or (lambda: False)
    p = params
    dev = resolve_device(device)
    prepare()  # TF32, the heap: stylegan2.device, as every engine
    log.info(
        "adapting %s from %r to %r: %d steps on %s",
        p.generator,
        p.source_text,
        p.target_text,
        p.steps,
        dev,
    )
    _remove_previous_results(out_dir, start_from)
    event("stage", "loading", 0)
    run = _Adaptation(
        p,
        out_dir,
        dev,
        models or ModelCache(),
        str(generator_path or p.generator),
        domain_images=domain_images,
    )
    metrics = _start(run, resume_from=resume_from, start_from=start_from)
    if resume_from is None:  # where this run starts: step 0, or the run it continues
        _first_sample(run, event)
    _train(run, metrics, event, cancel)
    if cancel():
        raise Canceled(f"canceled after step {run.state.step} of {p.steps}, before saving")
    return _save(run, metrics, event, started)


# -- the run's bookkeeping: before the first step and after the last ----------------------


@dataclass(frozen=True)
class _Events:
    """The run's progress callback, as `event(kind, stage, step, **fields)`: every event
    carries the run's total steps."""

    emit: ProgressCallback
    total_steps: int

    def __call__(self, kind: str, stage: str, step: int, **fields: Any) -> None:
        self.emit(
            Progress(kind=kind, stage=stage, step=step, total_steps=self.total_steps, **fields)
        )


def _remove_previous_results(out_dir: Path, start_from: Path | None) -> None:
    """A previous run's adapted.pt and resume.pt would pass for this run's: remove them,
    unless the resume.pt is the one this run continues (refused: it would be overwritten)."""
    resume_point = out_dir / rundir.RESUME
    if start_from is not None and Path(start_from).resolve() == resume_point.resolve():
        raise ResumeError(f"{start_from} would be overwritten: continue into another directory")
    for previous in (rundir.adapted_path(out_dir), resume_point, rundir.domain_path(out_dir)):
        if previous.exists():
            log.info("removing the previous run's %s", previous)
            previous.unlink()


def _start(run: _Adaptation, *, resume_from: Path | None, start_from: Path | None) -> Path:
    """Put the run where it starts, and return its metrics log (OUT/metrics.jsonl).

    resume_from (an intermediate checkpoint of this run) wins over start_from (a finished
    run's resume.pt); the metrics log keeps this run's own steps only: cut back to the
    resumed step, or started empty. params.json says what this run is.
    """
    metrics = rundir.metrics_path(run.out_dir)
    if resume_from is not None:
        run.restore(Path(resume_from))
        truncate_metrics(metrics, run.state.step)
    else:
        if start_from is not None:
            run.restore(Path(start_from), continuation=True)
        metrics.write_text("", encoding="utf-8")
    record = {**run.params.to_dict(), "device": str(run.device), "base": run.identity}
    rundir.write_text(rundir.params_path(run.out_dir), json.dumps(record, indent=2) + "\n")
    if resume_from is not None:
        log.info("resumed from %s at step %d", resume_from, run.state.step)
    elif start_from is not None:
        log.info("continuing %s from step %d", start_from, run.state.step)
    return metrics


def _first_sample(run: _Adaptation, event: _Events) -> None:
    """The sample (and scores) of the step a new run or a continuation starts from; a
    resumed run has it already."""
    start = run.state.step
    run.state.samples = [run.write_sample(start)]
    event("sample", "loading", start, path=run.state.samples[-1])
    scores = run.scores(start)
    if scores:
        event("scores", "loading", start, scores=scores)


def _save(run: _Adaptation, metrics: Path, event: _Events, started: float) -> AdaptResult:
    """OUT/domain.pt (a modulation run), OUT/adapted.pt, then OUT/resume.pt (which records
    adapted.pt's sha256)."""
    event("stage", "saving", run.state.step)
    domain = None
    if run.modulation is not None:
        domain = run.write_domain(rundir.domain_path(run.out_dir))
        numbers = sum(d.numel() for d in run.modulation.vectors.values())
        log.info("wrote %s (%d numbers)", domain, numbers)
    final = rundir.adapted_path(run.out_dir)
    digest = stylegan2.save_generator(final, run.weights(), run.latent_avg, run.metadata())
    log.info("wrote %s (sha256 %s)", final, digest)
    run.write_resume_point(run.out_dir / rundir.RESUME, digest)
    return AdaptResult(
        checkpoint=final,
        samples=tuple(run.state.samples),
        metrics=metrics,
        checkpoint_sha256=digest,
        steps=run.state.step,
        seconds=time.perf_counter() - started,
        domain=domain,
    )


# -- the step loop ----------------------------------------------------------------------------


def _train(run: _Adaptation, metrics: Path, event: _Events, cancel: CancelCheck) -> None:
    """Steps from the run's step to params.steps, each logged to `metrics` and reported,
    with samples, scores and intermediate checkpoints at their steps."""
    p = run.params
    start = run.state.step
    recent: deque[float] = deque(maxlen=10)  # seconds of the last steps
    with metrics.open("a", encoding="utf-8") as log_file:
        for step in range(start, p.steps):
            if cancel():
                raise Canceled(f"canceled before step {step + 1} of {p.steps}")
            t0 = time.perf_counter()
            if step % p.reselect_every == 0 or not run.state.selected:
                if step == start and run.selects:
                    event("stage", "selecting", step)
                run.state.selected = run.select(step)
            selection_seconds = time.perf_counter() - t0
            if step == start:
                event("stage", "training", step)
            losses = run.train_step(step)
            seconds = time.perf_counter() - t0
            recent.append(seconds)
            done = run.state.step = step + 1
            if "total" in losses:
                run.loss_average.update(losses["total"])
            snapshot = bool(p.snapshot_every) and done % p.snapshot_every == 0 and done < p.steps
            sampled = snapshot or done % p.sample_every == 0 or done == p.steps
            scores = run.scores(done) if sampled else {}
            log_file.write(_metrics_line(run, losses, seconds, selection_seconds, scores))
            log_file.flush()
            event(
                "step",
                "training",
                done,
                losses=losses,
                selected_layers=run.state.selected,
                seconds_per_step=sum(recent) / len(recent),
            )
            if sampled:
                _sample(run, scores, event)
            if p.checkpoint_every and done % p.checkpoint_every == 0 and done < p.steps:
                path = run.write_checkpoint(rundir.intermediate_checkpoint_path(run.out_dir, done))
                event("checkpoint", "training", done, path=path)
            if snapshot:  # the final step's snapshot is adapted.pt + resume.pt
                path = run.write_checkpoint(rundir.snapshot_path(run.out_dir, done))
                event("snapshot", "training", done, path=path)


def _metrics_line(
    run: _Adaptation,
    losses: dict[str, float],
    seconds: float,
    selection_seconds: float,
    scores: dict[str, float],
) -> str:
    """The metrics log's line of the step just done (JSON, newline-terminated)."""
    line: dict[str, Any] = {
        "step": run.state.step,
        "losses": losses,
        "selected_layers": list(run.state.selected),
        "seconds": round(seconds, 4),
        "selection_seconds": round(selection_seconds, 4),
    }
    if scores:
        line["scores"] = scores
    return json.dumps(line) + "\n"


def _sample(run: _Adaptation, scores: dict[str, float], event: _Events) -> None:
    """The sample of the step just done, the layers it trained, and its scores."""
    done = run.state.step
    run.state.selections[str(done)] = list(run.state.selected)
    run.state.samples.append(run.write_sample(done))
    event("sample", "training", done, path=run.state.samples[-1])
    if scores:
        event("scores", "training", done, scores=scores)
