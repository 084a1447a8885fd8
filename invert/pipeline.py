"""The photo engine calls: `run_inversion` (a photo into a generator's W+) and `run_edit`
(that code rendered through an adapted generator), with the signature and the progress and
cancel contract of `worker.engine.run_adaptation`.

    photo --(EXIF-upright RGB)--> align (FFHQ, invert.landmarks) or centre crop
          --> e4e encoder (invert.e4e) or the mean latent --> w_init [1, n_latent, 512]
          --> refinement (invert.refine: Adam on W+, pixel + LPIPS + latent terms)
          --> latent.pt, aligned.png, reconstruction.png, samples/step_XXXXXX.png

Progress and cancel speak nada/events.py, as the adaptation does. Events of an inversion:
`stage` loading -> aligning (with align) -> encoding -> refining (refine_steps > 0) ->
saving; `step` after every refinement step (losses: total (minimised), pixel (MSE),
perceptual (LPIPS; 0 when off), latent (mean squared distance to the start), noise (when
optimised); seconds_per_step over the last ten steps); `sample` with the PNG (the aligned
photo | the current reconstruction) at step 0, every sample_every steps and the last.

    >>> result = run_inversion(InvertParams(generator="ffhq-1024"), Path("runs/me"),
    ...                        photo_path=Path("me.jpg"), device="cuda")
    >>> result.latent, result.reconstruction
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from invert.images import (
    center_crop,
    center_square,
    image_to_tensor,
    png_bytes,
    side_by_side,
    tensor_to_uint8,
    write_png,
)
from invert.latent import (
    latent_bytes,
    read_latent,
    render_latent,
)
from invert.models import PhotoModels, UncachedModels, load_encoder
from invert.photos import load_photo
from invert.refine import Perceptual, RefineResult, refine_w_plus
from nada import __version__ as nada_version
from nada import rundir
from nada.events import CancelCheck, Canceled, Progress, ProgressCallback
from nada.photo_params import EditParams, InvertParams, check_photo_family
from stylegan2.device import prepare, resolve_device

if TYPE_CHECKING:
    from invert.e4e import E4E
    from invert.landmarks import LandmarkDetector
    from stylegan2 import LoadedGenerator
    from stylegan2.model import Generator

__all__ = ["EditResult", "InversionResult", "PhotoModels", "run_edit", "run_inversion"]

log = logging.getLogger(__name__)

SAMPLE_MAX_TILE = 256  # progress samples are for judging, not keeping: cap the tile size


# -- the contract with callers ------------------------------------------------------------


@dataclass(frozen=True)
class InversionResult:
    """What a finished inversion wrote (paths inside its output directory)."""

    latent: Path  # latent.pt: w_plus, noise (when optimised), metadata
    aligned: Path  # aligned.png: the photo as the encoder and the refinement saw it
    reconstruction: Path  # reconstruction.png: the base generator's render of w_plus
    samples: tuple[Path, ...]  # samples/step_XXXXXX.png, in step order
    latent_sha256: str
    seconds: float
    note: str | None  # for the user: several faces, no perceptual loss, ...


@dataclass(frozen=True)
class EditResult:
    image: Path  # edit.png
    samples: tuple[()]  # an edit writes no progress images
    image_sha256: str


# -- run_inversion: its parts -------------------------------------------------------------


class _Report:
    """The Progress events of one inversion (total_steps: its refinement steps), with the
    pace of the last ten steps."""

    def __init__(self, on_progress: ProgressCallback | None, total_steps: int) -> None:
        self.emit_to = on_progress or (lambda event: None)
        self.total_steps = total_steps
        self._recent: deque[float] = deque(maxlen=10)  # seconds of the last steps
        self._tick = time.perf_counter()

    def event(self, kind: str, stage: str, step: int, **kwargs: Any) -> None:
        self.emit_to(Progress(kind=kind, stage=stage, step=step, total_steps=self.total_steps,
                              **kwargs))  # fmt: skip

    def stage(self, stage: str, step: int = 0) -> None:
        self.event("stage", stage, step)

    def start_clock(self) -> None:
        """The next step's time counts from now (not from a sample's writing)."""
        self._tick = time.perf_counter()

    def step(self, step: int, losses: dict[str, float]) -> None:
        self._recent.append(time.perf_counter() - self._tick)
        pace = sum(self._recent) / len(self._recent)
        self.event("step", "refining", step, losses=dict(losses), seconds_per_step=pace)


class _Samples:
    """Writes samples/step_XXXXXX.png (the aligned photo | the current reconstruction)."""

    def __init__(self, out_dir: Path, generator: Generator, target: Tensor, report: _Report):
        self.out_dir, self.generator, self.target, self.report = out_dir, generator, target, report
        self.paths: list[Path] = []
        self.last: tuple[int, Tensor] | None = None  # (step, reconstruction) of the newest

    def write(self, stage: str, step: int, w_plus: Tensor, noise: Sequence[Tensor] | None) -> None:
        image = render_latent(self.generator, w_plus, noise)
        self.last = (step, image)
        path = rundir.sample_path(self.out_dir, step)
        write_png(path, side_by_side([self.target, image], max_tile=SAMPLE_MAX_TILE))
        self.paths.append(path)
        self.report.event("sample", stage, step, path=path)

    def reconstruction(self, refined: RefineResult, step: int) -> Tensor:
        """The render of the final code: the last sample's when it was of that step."""
        if self.last is not None and self.last[0] == step:
            return self.last[1]
        return render_latent(self.generator, refined.w_plus, refined.noise)


@dataclass(frozen=True)
class _Framed:
    """The photo as the encoder and the refinement see it."""

    aligned: Image.Image  # RGB, generator.size square
    encoder_input: Image.Image  # the square the encoder resizes itself, once (e4e's transform)
    target: Tensor  # [1, 3, S, S] in [-1, 1], CPU
    quad: list[list[float]] | None  # the face's corners in the photo (align on)
    note: str | None  # several faces, ...


def _frame(photo: Image.Image, align: bool, size: int, detector: Callable[[], LandmarkDetector],
           report: _Report) -> _Framed:  # fmt: skip
    """The face aligned FFHQ-style (align on; `detector()` gives the detector), else the
    centre square, at the generator's size."""
    if not align:
        # The encoder gets the crop at its own resolution: e4e resizes its input once, to
        # 256 with PIL's bilinear filter; through the generator's size first (Lanczos up or
        # down, then bilinear) its code would drift from e4e's own (docs/photos.md).
        square = center_crop(photo)
        aligned = center_square(square, size)
        return _Framed(aligned, square, image_to_tensor(aligned), None, None)
    report.stage("aligning")
    from invert.landmarks import align_photo  # face-alignment: only when aligning

    face, note = align_photo(photo, size, detector())
    quad = [[float(x), float(y)] for x, y in face.quad]
    return _Framed(face.image, face.image, image_to_tensor(face.image), quad, note)


def _start_code(e4e: E4E | None, encoder_input: Image.Image, loaded: LoadedGenerator,
                device: torch.device) -> Tensor:  # fmt: skip
    """The refinement's start [1, n_latent, 512]: the encoder's code (latent_avg included),
    or the generator's mean latent in every entry."""
    if e4e is None:
        n_latent = loaded.generator.n_latent
        return loaded.latent_avg.reshape(1, 1, -1).repeat(1, n_latent, 1).float()
    from invert.e4e import preprocess

    return e4e.encode(preprocess(encoder_input)).to(device)


def _refine(p: InvertParams, generator: Generator, target: Tensor, w_init: Tensor,
            perceptual: Perceptual | None, samples: _Samples, report: _Report,
            cancel: CancelCheck) -> RefineResult:  # fmt: skip
    """invert.refine's optimisation, a 'step' event after every step and a sample every
    sample_every steps and at the last."""

    def on_step(step: int, losses: dict[str, float], state: RefineResult) -> None:
        report.step(step, losses)
        if (p.sample_every and step % p.sample_every == 0) or step == p.refine_steps:
            samples.write("refining", step, state.w_plus, state.noise)
        report.start_clock()  # a sample's time is not a step's

    report.start_clock()
    return refine_w_plus(
        generator,
        target,
        w_init,
        steps=p.refine_steps,
        lr=p.refine_lr,
        pixel_weight=p.pixel_weight,
        perceptual=perceptual,
        perceptual_weight=p.perceptual_weight,
        latent_weight=p.latent_weight,
        optimize_noise=p.optimize_noise,
        seed=p.seed,
        on_step=on_step,
        should_cancel=cancel,
    )


def _metadata(p: InvertParams, loaded: LoadedGenerator, e4e: E4E | None, framed: _Framed,
              refined: RefineResult, note: str | None) -> dict[str, Any]:  # fmt: skip
    """latent.pt's record of how the code was made (and inversion.json's, for the API)."""
    return {
        "kind": "nada-inversion",
        "generator": p.generator,
        "generator_sha256": loaded.identity.get("sha256"),
        "generator_size": loaded.generator.size,
        "encoder": e4e.source if e4e is not None else None,
        "align": p.align,
        "quad": framed.quad,
        "refine_steps": p.refine_steps,
        "losses": dict(refined.losses),
        "params": p.to_dict(),
        "note": note,
        "versions": {
            "nada": nada_version,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
        },
    }


def _publish(out_dir: Path, framed: _Framed, reconstruction: Tensor, refined: RefineResult,
             metadata: dict[str, Any]) -> str:  # fmt: skip
    """Write aligned.png, reconstruction.png, inversion.json and, last (its presence means
    the inversion finished), latent.pt; returns latent.pt's sha256."""
    aligned = np.asarray(framed.aligned, dtype=np.uint8)
    rundir.write_bytes(out_dir / rundir.ALIGNED, png_bytes(aligned))
    write_png(out_dir / rundir.RECONSTRUCTION, tensor_to_uint8(reconstruction)[0])
    # The metadata as JSON too: the API (no torch) shows the note and the losses from it.
    rundir.write_text(out_dir / rundir.INVERSION_INFO, json.dumps(metadata, default=str))
    data = latent_bytes(refined.w_plus, refined.noise, metadata)
    rundir.write_bytes(out_dir / rundir.LATENT, data)
    digest = hashlib.sha256(data).hexdigest()
    log.info("wrote %s (sha256 %s)", out_dir / rundir.LATENT, digest)
    return digest


# -- run_inversion ------------------------------------------------------------------------


def run_inversion(
    params: InvertParams,
    out_dir: Path,
    *,
    photo_path: Path,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    resume_from: Path | None = None,
    models: PhotoModels | None = None,
    generator_path: Path | None = None,
    detector: LandmarkDetector | None = None,
    encoder_path: Path | None = None,
) -> InversionResult:
    """Put a photo into `params.generator`'s W+.

    Args:
        params: the inversion (validated on construction).
        out_dir: receives latent.pt, aligned.png, reconstruction.png, samples/.
        photo_path: the photo (JPEG, PNG or WebP; EXIF orientation applied).
        device: 'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:1', ...
        on_progress: receives Progress events (stages, every refinement step, samples).
        should_cancel: polled before every refinement step and before saving; True raises
            Canceled and leaves no latent.pt.
        resume_from: accepted for the engine-call signature and ignored: an inversion is
            short, a retried one starts over.
        models: the generator, encoder, face detector and perceptual loss, kept between jobs
            (a worker.model_cache.ModelCache); None loads each for this call.
        generator_path: a local file holding params.generator (an uploaded generator).
        detector: the face landmark detector (default: models.detector, a FanDetector).
        encoder_path: a local encoder file overriding params.encoder.

    Returns:
        InversionResult with the paths written and latent.pt's sha256.

    Raises:
        Canceled: should_cancel returned True.
        nada.errors.ParamError: field 'encoder' (its codes do not fit the generator);
            field 'generator' (a StyleGAN3: require_stylegan2).
        invert.landmarks.NoFaceError: no face in the photo (align on).
        invert.photos.PhotoRejected: not a usable photo.
        invert.e4e.EncoderError, stylegan2.CheckpointError: a bad encoder/generator file.
        stylegan2.download.DownloadError: a model file missing and not downloadable.
    """
    del resume_from  # see Args
    started = time.perf_counter()
    p, out_dir = params, Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    prepare()
    cache: PhotoModels = models or UncachedModels()
    report, cancel = _Report(on_progress, p.refine_steps), should_cancel or (lambda: False)
    (out_dir / rundir.LATENT).unlink(missing_ok=True)  # a previous run's would pass for this one's

    report.stage("loading")
    photo = load_photo(photo_path)
    loaded = require_stylegan2(cache.generator(str(generator_path or p.generator), dev))
    e4e = load_encoder(p, encoder_path, loaded.generator, dev, cache)
    framed = _frame(photo, p.align, loaded.generator.size,
                    lambda: detector or cache.detector(dev), report)  # fmt: skip
    notes = [framed.note] if framed.note else []

    report.stage("encoding")
    w_init = _start_code(e4e, framed.encoder_input, loaded, dev)
    samples = _Samples(out_dir, loaded.generator, framed.target, report)
    if p.sample_every > 0 or p.refine_steps == 0:
        samples.write("encoding", 0, w_init, None)
    refined = RefineResult(w_init, None, {})
    if p.refine_steps > 0:
        report.stage("refining")
        perceptual = cache.perceptual(dev) if p.perceptual_weight > 0 else None
        if p.perceptual_weight > 0 and perceptual is None:
            notes.append("perceptual loss unavailable: pixel loss only")
        refined = _refine(p, loaded.generator, framed.target.to(dev), w_init, perceptual,
                          samples, report, cancel)  # fmt: skip

    if cancel():
        raise Canceled(f"canceled after refinement step {p.refine_steps}, before saving")
    report.stage("saving", p.refine_steps)
    note = "; ".join(notes) or None
    metadata = _metadata(p, loaded, e4e, framed, refined, note)
    digest = _publish(out_dir, framed, samples.reconstruction(refined, p.refine_steps), refined,
                      metadata)  # fmt: skip
    return InversionResult(
        latent=out_dir / rundir.LATENT,
        aligned=out_dir / rundir.ALIGNED,
        reconstruction=out_dir / rundir.RECONSTRUCTION,
        samples=tuple(samples.paths),
        latent_sha256=digest,
        seconds=time.perf_counter() - started,
        note=note,
    )


def require_stylegan2(loaded: Any) -> Any:
    """The loaded generator if it is a StyleGAN2 (nada.photo_params.check_photo_family).

    Raises:
        ParamError: field 'generator', a StyleGAN3 (or any other family's) generator.
    """
    check_photo_family(loaded.family)
    return loaded


# -- run_edit -----------------------------------------------------------------------------


def run_edit(
    params: EditParams,
    out_dir: Path,
    *,
    latent_path: Path,
    checkpoint_path: Path,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    resume_from: Path | None = None,
    models: PhotoModels | None = None,
    edit_w_plus: Callable[[Tensor], Tensor] | None = None,
) -> EditResult:
    """Render an inversion's latent.pt (w_plus, and its noise maps when saved) through an
    adapted generator (an adapted.pt, or anything stylegan2.load_generator reads) to edit.png.

    `params` names the two jobs (for the record); the files come from the caller. Events
    (total_steps 1, as jobs/kinds.py counts an edit): stages loading, rendering, a 'step'
    once the image is rendered, saving. `resume_from` is ignored (one forward pass).
    `edit_w_plus` moves the code before it is drawn (the latent edits of `params.edits`,
    worker/latent_edits.py, which the worker hands in).

    Raises:
        LatentError: latent.pt unreadable, or its code does not fit the generator.
        ParamError: field 'generator', the adapted generator is not a StyleGAN2.
        Canceled: should_cancel returned True before rendering or saving.
        stylegan2.CheckpointError: a bad checkpoint file.
    """
    del resume_from
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    emit_to = on_progress or (lambda event: None)
    cancel = should_cancel or (lambda: False)
    dev = resolve_device(device)
    prepare()

    def emit(kind: str, stage: str, step: int) -> None:
        emit_to(Progress(kind=kind, stage=stage, step=step, total_steps=1))

    emit("stage", "loading", 0)
    code = read_latent(latent_path)
    loaded = require_stylegan2((models or UncachedModels()).generator(str(checkpoint_path), dev))
    if cancel():
        raise Canceled("canceled before rendering")
    emit("stage", "rendering", 0)
    w_plus = code.w_plus if edit_w_plus is None else edit_w_plus(code.w_plus)
    image = render_latent(loaded.generator, w_plus, code.noise)
    emit("step", "rendering", 1)
    if cancel():
        raise Canceled("canceled before saving")
    emit("stage", "saving", 1)
    path = out_dir / rundir.EDIT
    digest = write_png(path, tensor_to_uint8(image)[0])
    log.info("edit of inversion %s through job %s: %s", params.inversion_id, params.job_id, path)
    return EditResult(image=path, samples=(), image_sha256=digest)
