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
from torch import Tensor

import stylegan2
from invert import weights
from invert.images import (
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
    size_for,
)
from invert.photos import load_photo
from invert.refine import RefineResult, refine_w_plus
from nada import __version__ as nada_version
from nada import rundir
from nada.errors import ParamError
from nada.events import CancelCheck, Canceled, Progress, ProgressCallback
from nada.photo_params import ENCODER_AUTO, ENCODER_NONE, EditParams, InvertParams
from stylegan2.device import resolve_device

if TYPE_CHECKING:
    from invert.e4e import E4E
    from invert.landmarks import LandmarkDetector
    from stylegan2.model import Generator

__all__ = ["EditResult", "InversionResult", "run_edit", "run_inversion"]

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


# -- loading models -----------------------------------------------------------------------


def _load_generator(source: str, device: torch.device, models: Any) -> Any:
    """A frozen stylegan2.LoadedGenerator, from the caller's ModelCache when there is one."""
    if models is not None:
        return models.generator(source, device)
    loaded = stylegan2.load_generator(source, device=device)
    loaded.generator.eval().requires_grad_(False)
    return loaded


def _from_cache(models: Any, kind: str, load: Callable[..., Any], *args: Any) -> Any:
    """`models.<kind>(*args)` when the caller's cache keeps that kind of model, else a fresh
    `load(*args)` (a ModelCache that holds only generators still works)."""
    cached = getattr(models, kind, None)
    return cached(*args) if callable(cached) else load(*args)


def _load_encoder(
    params: InvertParams,
    encoder_path: Path | None,
    generator: Generator,
    device: torch.device,
    models: Any,
) -> E4E | None:
    """The encoder `params.encoder` names (auto, none, a weights name, a path), checked to
    make codes of the generator's length."""
    source: str | Path | None
    if encoder_path is not None:
        source = encoder_path
    elif params.encoder == ENCODER_AUTO:
        source = weights.encoder_for(params.generator)
    elif params.encoder == ENCODER_NONE:
        source = None
    else:
        source = params.encoder
    if source is None:
        return None
    from invert.e4e_weights import load_e4e  # the encoder's module is large: only when one is used

    e4e: E4E = _from_cache(models, "encoder", lambda s, d: load_e4e(s, device=d), source, device)
    if e4e.n_styles != generator.n_latent:
        raise ParamError(
            "encoder",
            f"{e4e.source!r} makes codes of {e4e.n_styles} W+ entries (for a "
            f"{size_for(e4e.n_styles)} px generator), but generator {params.generator!r} "
            f"({generator.size} px) takes {generator.n_latent}",
        )
    return e4e


# -- run_inversion ------------------------------------------------------------------------


class _Samples:
    """Writes samples/step_XXXXXX.png (the aligned photo | the current reconstruction)."""

    def __init__(
        self, out_dir: Path, generator: Generator, target: Tensor, emit: Callable[..., None]
    ):
        self.out_dir, self.generator, self.target, self.emit = out_dir, generator, target, emit
        self.paths: list[Path] = []
        self.last: tuple[int, Tensor] | None = None  # (step, reconstruction) of the newest

    def write(self, stage: str, step: int, w_plus: Tensor, noise: Sequence[Tensor] | None) -> None:
        image = render_latent(self.generator, w_plus, noise)
        self.last = (step, image)
        path = rundir.sample_path(self.out_dir, step)
        write_png(path, side_by_side([self.target, image], max_tile=SAMPLE_MAX_TILE))
        self.paths.append(path)
        self.emit("sample", stage, step, path=path)


def run_inversion(
    params: InvertParams,
    out_dir: Path,
    *,
    photo_path: Path,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    resume_from: Path | None = None,
    models: Any = None,
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
        models: a worker.model_cache.ModelCache (anything with `.generator(name, device)`
            returning a frozen stylegan2.LoadedGenerator) to share generators between jobs;
            where it also has `.encoder(source, device)` (an E4E), `.detector(device)` (a
            LandmarkDetector) or `.perceptual(device)` (load_perceptual's answer), those
            are kept between jobs too.
        generator_path: a local file holding params.generator (an uploaded generator).
        detector: the face landmark detector (default: invert.landmarks.FanDetector).
        encoder_path: a local encoder file overriding params.encoder.

    Returns:
        InversionResult with the paths written and latent.pt's sha256.

    Raises:
        Canceled: should_cancel returned True.
        nada.errors.ParamError: field 'encoder' (its codes do not fit the generator).
        invert.landmarks.NoFaceError: no face in the photo (align on).
        invert.photos.PhotoRejected: not a usable photo.
        invert.e4e.EncoderError, stylegan2.CheckpointError: a bad encoder/generator file.
        stylegan2.download.DownloadError: a model file missing and not downloadable.
    """
    del resume_from  # see Args
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    emit_to = on_progress or (lambda event: None)
    cancel = should_cancel or (lambda: False)
    p = params
    dev = resolve_device(device)
    notes: list[str] = []

    def emit(kind: str, stage: str, step: int, **kwargs: Any) -> None:
        emit_to(Progress(kind=kind, stage=stage, step=step, total_steps=p.refine_steps, **kwargs))

    final = out_dir / rundir.LATENT
    if final.exists():  # a previous run's: it would pass for this run's if this one stops
        final.unlink()
    emit("stage", "loading", 0)
    photo = load_photo(photo_path)
    loaded = _load_generator(str(generator_path or p.generator), dev, models)
    generator: Generator = loaded.generator
    e4e = _load_encoder(p, encoder_path, generator, dev, models)

    quad: list[list[float]] | None = None
    if p.align:
        emit("stage", "aligning", 0)
        from invert.landmarks import FanDetector, align_photo  # face-alignment: when aligning

        detector = detector or _from_cache(models, "detector", FanDetector, str(dev))
        face, note = align_photo(photo, generator.size, detector)
        aligned, quad = face.image, [[float(x), float(y)] for x, y in face.quad]
        notes += [note] if note else []
    else:
        aligned = center_square(photo, generator.size)
    target = image_to_tensor(aligned)  # [1, 3, S, S] in [-1, 1], CPU

    emit("stage", "encoding", 0)
    if e4e is not None:
        from invert.e4e import preprocess

        w_init = e4e.encode(preprocess(aligned)).to(dev)  # latent_avg included
    else:
        w_init = loaded.latent_avg.reshape(1, 1, -1).repeat(1, generator.n_latent, 1).float()

    samples = _Samples(out_dir, generator, target, emit)
    refined = RefineResult(w_init, None, {})
    if p.sample_every > 0 or p.refine_steps == 0:
        samples.write("encoding", 0, w_init, None)
    if p.refine_steps > 0:
        emit("stage", "refining", 0)
        perceptual = None
        if p.perceptual_weight > 0:
            from invert.perceptual import load_perceptual

            perceptual = _from_cache(models, "perceptual", load_perceptual, dev)
            if perceptual is None:
                notes.append("perceptual loss unavailable: pixel loss only")
        recent: deque[float] = deque(maxlen=10)  # seconds of the last steps
        last_tick = time.perf_counter()

        def on_step(step: int, losses: dict[str, float], state: RefineResult) -> None:
            nonlocal last_tick
            recent.append(time.perf_counter() - last_tick)
            emit("step", "refining", step, losses=dict(losses),
                 seconds_per_step=sum(recent) / len(recent))  # fmt: skip
            if (p.sample_every and step % p.sample_every == 0) or step == p.refine_steps:
                samples.write("refining", step, state.w_plus, state.noise)
            last_tick = time.perf_counter()  # a sample's time is not a step's

        refined = refine_w_plus(
            generator,
            target.to(dev),
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

    if cancel():
        raise Canceled(f"canceled after refinement step {p.refine_steps}, before saving")
    emit("stage", "saving", p.refine_steps)
    last = samples.last
    if last is not None and last[0] == p.refine_steps:
        reconstruction = last[1]
    else:
        reconstruction = render_latent(generator, refined.w_plus, refined.noise)
    note = "; ".join(notes) or None
    identity = loaded.identity
    metadata = {
        "kind": "nada-inversion",
        "generator": p.generator,
        "generator_sha256": identity.get("sha256"),
        "generator_size": generator.size,
        "encoder": e4e.source if e4e is not None else None,
        "align": p.align,
        "quad": quad,
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
    aligned_path = out_dir / rundir.ALIGNED
    rundir.write_bytes(aligned_path, png_bytes(np.asarray(aligned, dtype=np.uint8)))
    reconstruction_path = out_dir / rundir.RECONSTRUCTION
    write_png(reconstruction_path, tensor_to_uint8(reconstruction)[0])
    # The metadata as JSON too: the API (no torch) shows the note and the losses from it.
    rundir.write_text(out_dir / rundir.INVERSION_INFO, json.dumps(metadata, default=str))
    data = latent_bytes(refined.w_plus, refined.noise, metadata)
    rundir.write_bytes(final, data)  # last: its presence means the inversion finished
    digest = hashlib.sha256(data).hexdigest()
    log.info("wrote %s (sha256 %s)", final, digest)
    return InversionResult(
        latent=final,
        aligned=aligned_path,
        reconstruction=reconstruction_path,
        samples=tuple(samples.paths),
        latent_sha256=digest,
        seconds=time.perf_counter() - started,
        note=note,
    )


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
    models: Any = None,
) -> EditResult:
    """Render an inversion's latent.pt (w_plus, and its noise maps when saved) through an
    adapted generator (an adapted.pt, or anything stylegan2.load_generator reads) to edit.png.

    `params` names the two jobs (for the record); the files come from the caller. Events
    (total_steps 1, as jobs/kinds.py counts an edit): stages loading, rendering, a 'step'
    once the image is rendered, saving. `resume_from` is ignored (one forward pass).

    Raises:
        LatentError: latent.pt unreadable, or its code does not fit the generator.
        Canceled: should_cancel returned True before rendering or saving.
        stylegan2.CheckpointError: a bad checkpoint file.
    """
    del resume_from
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    emit_to = on_progress or (lambda event: None)
    cancel = should_cancel or (lambda: False)
    dev = resolve_device(device)

    def emit(kind: str, stage: str, step: int) -> None:
        emit_to(Progress(kind=kind, stage=stage, step=step, total_steps=1))

    emit("stage", "loading", 0)
    code = read_latent(latent_path)
    loaded = _load_generator(str(checkpoint_path), dev, models)
    if cancel():
        raise Canceled("canceled before rendering")
    emit("stage", "rendering", 0)
    image = render_latent(loaded.generator, code.w_plus, code.noise)
    emit("step", "rendering", 1)
    if cancel():
        raise Canceled("canceled before saving")
    emit("stage", "saving", 1)
    path = out_dir / rundir.EDIT
    digest = write_png(path, tensor_to_uint8(image)[0])
    log.info("edit of inversion %s through job %s: %s", params.inversion_id, params.job_id, path)
    return EditResult(image=path, samples=(), image_sha256=digest)
