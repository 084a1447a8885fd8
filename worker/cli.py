"""`nada adapt` (run one adaptation here, with a progress bar) and `nada generate` (render a
grid from any generator checkpoint); `nada worker` (the Celery worker) is registered from
worker/worker_cli.py.

Imported by `nada` at start-up: torch and the engine are imported only when a command runs.
Refusals name the flag: the engine's ParamError names a parameter, `_FLAGS` maps it back.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nada.errors import CLIError
from nada.params import AdaptParams, ClipSpec, ParamError

# AdaptParams field -> the `nada adapt` flag that sets it.
_FLAGS = {
    "source_text": "--source",
    "target_text": "--target",
    "generator": "--generator",
    "clip_models": "--clip-models",
    "steps": "--steps",
    "layers": "--layers",
    "selection": "--selection",
    "include_torgb": "--include-torgb",
    "probe_steps": "--probe-steps",
    "probe_batch": "--probe-batch",
    "reselect_every": "--reselect-every",
    "batch_size": "--batch-size",
    "lr": "--lr",
    "sample_every": "--sample-every",
    "checkpoint_every": "--checkpoint-every",
    "mixing": "--mixing",
    "seed": "--seed",
    "n_samples": "--n-samples",
    "sample_truncation": "--sample-truncation",
    "lambda_direction": "--lambda-direction",
    "lambda_global": "--lambda-global",
}
_DEFAULTS = AdaptParams("photo", "sketch")  # the schema's defaults, shown in --help


def register(subparsers: Any) -> None:
    """Add this package's commands to the `nada` dispatcher."""
    _register_adapt(subparsers)
    _register_generate(subparsers)
    _register_service_commands(subparsers)


# -- nada adapt ---------------------------------------------------------------------------


def _register_adapt(subparsers: Any) -> None:
    d = _DEFAULTS
    p = subparsers.add_parser(
        "adapt",
        help="adapt a generator to a text prompt (StyleGAN-NADA) on this machine",
        description="Shift a StyleGAN2 generator from what --source describes to what --target "
        "describes, guided by CLIP. Writes OUT/adapted.pt, OUT/samples/step_XXXXXX.png "
        "(source row over adapted row) and OUT/metrics.jsonl.",
    )
    p.add_argument("--source", required=True, help="what the generator makes now: 'photo'")
    p.add_argument("--target", required=True, help="what it should make: 'pencil sketch'")
    p.add_argument(
        "--generator",
        default=d.generator,
        help=f"registry name (see `nada models list`), random-<size>, or a .pt path "
        f"(default {d.generator})",
    )
    p.add_argument(
        "--clip-models",
        default=",".join(spec.name for spec in d.clip_models),
        help="comma-separated open_clip models, arch[:pretrained]; ':random' = seeded random "
        "weights, no download (default %(default)s)",
    )
    p.add_argument(
        "--clip-weights",
        default=None,
        help="comma-separated loss weight per model (default 1 each)",
    )
    p.add_argument("--steps", type=int, default=d.steps, help="training steps (%(default)s)")
    p.add_argument(
        "--layers",
        type=int,
        default=d.layers,
        help="layers trained per step; 0 = all (%(default)s)",
    )
    p.add_argument(
        "--selection",
        default=d.selection,
        help="layer selection: latent (the paper's W+ probe) or gradient (%(default)s)",
    )
    p.add_argument(
        "--include-torgb", action="store_true", help="let the to_rgb layers be selected too"
    )
    p.add_argument("--probe-steps", type=int, default=d.probe_steps, help="(%(default)s)")
    p.add_argument(
        "--probe-batch", type=int, default=d.probe_batch, help="latents per probe (%(default)s)"
    )
    p.add_argument("--reselect-every", type=int, default=d.reselect_every, help="(%(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="(%(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (%(default)s)")
    p.add_argument("--sample-every", type=int, default=d.sample_every, help="(%(default)s)")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=d.checkpoint_every,
        help="steps between resumable checkpoints in OUT/checkpoints; 0 = none (%(default)s)",
    )
    p.add_argument("--mixing", type=float, default=d.mixing, help="style-mixing probability")
    p.add_argument("--seed", type=int, default=d.seed, help="(%(default)s)")
    p.add_argument("--n-samples", type=int, default=d.n_samples, help="images per sample row")
    p.add_argument("--sample-truncation", type=float, default=d.sample_truncation, help="psi")
    p.add_argument("--lambda-direction", type=float, default=d.lambda_direction)
    p.add_argument("--lambda-global", type=float, default=d.lambda_global)
    p.add_argument("--resume", type=Path, default=None, help="an OUT/checkpoints/*.pt to continue")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (%(default)s)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_adapt)


def _number_list(flag: str, text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CLIError(
            f"argument {flag}: expected numbers separated by commas (got {text!r})"
        ) from None


def params_from_args(args: argparse.Namespace) -> AdaptParams:
    """The AdaptParams the flags describe; a refusal names the flag."""
    names = [name.strip() for name in args.clip_models.split(",") if name.strip()]
    if not names:
        raise CLIError("argument --clip-models: name at least one model")
    weights = [1.0] * len(names)
    if args.clip_weights is not None:
        weights = _number_list("--clip-weights", args.clip_weights)
        if len(weights) != len(names):
            raise CLIError(
                f"argument --clip-weights: {len(weights)} weights for {len(names)} models "
                f"({', '.join(names)})"
            )
    values = {
        field: getattr(args, flag[2:].replace("-", "_"))
        for field, flag in _FLAGS.items()
        if field not in ("source_text", "target_text", "clip_models")
    }
    try:
        return AdaptParams(
            source_text=args.source,
            target_text=args.target,
            clip_models=tuple(ClipSpec(n, w) for n, w in zip(names, weights, strict=True)),
            **values,
        )
    except ParamError as exc:
        raise _flag_error(exc) from None


def _flag_error(exc: ParamError) -> CLIError:
    flag = _FLAGS.get(exc.field)
    if flag is None:
        return CLIError(str(exc))
    if exc.field == "clip_models" and ("weight of" in exc.message or "weight >" in exc.message):
        flag = "--clip-weights"
    return CLIError(f"argument {flag}: {exc.message}")


def _check_generator(name: str) -> None:
    """Refuse an unknown name or a missing file before loading anything."""
    from stylegan2 import registry

    if Path(name).is_file():
        return
    try:
        if registry.parse_random_name(name) is not None:
            return
        if Path(name).suffix or "/" in name:
            raise ValueError(f"no such file {name}")
        registry.get_generator_info(name)
    except ValueError as exc:  # UnknownGeneratorError lists the known names
        raise CLIError(f"argument --generator: {exc}") from None


def cmd_adapt(args: argparse.Namespace) -> int:
    params = params_from_args(args)
    from tqdm import tqdm

    from stylegan2 import CheckpointError
    from worker.clip_models import check_clip_name
    from worker.engine import ResumeError, resolve_device, run_adaptation
    from worker.events import Progress

    try:
        for spec in params.clip_models:
            check_clip_name(spec.name)
    except ParamError as exc:
        raise _flag_error(exc) from None

    try:
        resolve_device(args.device)
    except ValueError as exc:
        raise CLIError(f"argument --device: {exc}") from None

    if args.resume is not None and not args.resume.is_file():
        raise CLIError(f"argument --resume: no such file {args.resume}")
    _check_generator(params.generator)

    bar = tqdm(total=params.steps, file=sys.stderr, unit="step", disable=args.no_progress or None)

    def on_progress(event: Progress) -> None:
        if event.kind == "stage" and event.stage != "training":
            bar.set_description(event.stage)
        elif event.kind == "step":
            bar.set_description("training")
            bar.n = event.step
            postfix = {"loss": f"{event.losses.get('total', float('nan')):.4f}"}
            if event.seconds_per_step is not None:
                postfix["s/step"] = f"{event.seconds_per_step:.2f}"
            bar.set_postfix(postfix, refresh=False)
            bar.refresh()

    try:
        result = run_adaptation(
            params,
            args.out,
            device=args.device,
            on_progress=on_progress,
            resume_from=args.resume,
        )
    except ParamError as exc:
        raise _flag_error(exc) from None
    except ResumeError as exc:
        raise CLIError(f"argument --resume: {exc}") from None
    except CheckpointError as exc:  # the base generator's file
        raise CLIError(f"argument --generator: {exc}") from None
    finally:
        bar.close()
    print(
        json.dumps(
            {
                "checkpoint": str(result.checkpoint),
                "sha256": result.checkpoint_sha256,
                "samples": str(result.checkpoint.parent / "samples"),
                "metrics": str(result.metrics),
                "steps": result.steps,
                "seconds": round(result.seconds, 1),
            },
            indent=2,
        )
    )
    return 0


# -- nada generate ------------------------------------------------------------------------


def _register_generate(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "generate",
        help="render a grid of images from a generator checkpoint",
        description="Render the images of the given seeds from any StyleGAN2 generator "
        "(an adapted.pt, a rosinality-layout .pt, a registry name or random-<size>) into "
        "one PNG. A seed always renders the same image.",
    )
    p.add_argument("--checkpoint", required=True, help="a .pt file or a generator name")
    p.add_argument("--seeds", default="0-7", help="'0-7' or '1,5,9' (%(default)s)")
    p.add_argument("--truncation", type=float, default=0.7, help="psi, 0..1 (%(default)s)")
    p.add_argument("--columns", type=int, default=8, help="images per row (%(default)s)")
    p.add_argument("--batch-size", type=int, default=4, help="images per pass (%(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (%(default)s)")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from worker.samples import parse_seeds

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        raise CLIError(f"argument --seeds: {exc}") from None
    if len(seeds) > 256:
        raise CLIError(f"argument --seeds: at most 256 images per grid (got {len(seeds)})")
    if not 0 <= args.truncation <= 1:
        raise CLIError(f"argument --truncation: must be 0..1 (got {args.truncation})")
    if args.columns < 1:
        raise CLIError(f"argument --columns: must be at least 1 (got {args.columns})")
    if args.batch_size < 1:
        raise CLIError(f"argument --batch-size: must be at least 1 (got {args.batch_size})")

    import torch

    import stylegan2
    from worker.engine import resolve_device
    from worker.samples import image_grid, render, seeded_inputs, write_png

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise CLIError(f"argument --device: {exc}") from None
    try:
        loaded = stylegan2.load_generator(args.checkpoint, device=device)
    except (ValueError, OSError) as exc:  # CheckpointError, unknown name, download failure
        raise CLIError(f"argument --checkpoint: {exc}") from None
    z, noise = seeded_inputs(seeds, loaded.generator)
    images = render(
        loaded.generator,
        z,
        noise,
        truncation=args.truncation,
        truncation_latent=loaded.latent_avg,
        batch_size=args.batch_size,
    )
    columns = min(args.columns, len(seeds))
    blank = torch.ones_like(images[:1])  # white filler for the last row
    rows = []
    for i in range(0, len(seeds), columns):
        row = images[i : i + columns]
        if row.shape[0] < columns:
            row = torch.cat([row, blank.expand(columns - row.shape[0], -1, -1, -1)])
        rows.append(row)
    path = write_png(args.out, image_grid(rows))
    print(path)
    return 0


# -- service commands ---------------------------------------------------------------------
# `nada worker` (the Celery worker) is owned by the service: it lives in worker/worker_cli.py.
# Further service commands register here.


def _register_service_commands(subparsers: Any) -> None:
    try:
        from worker.worker_cli import register_worker_command
    except ModuleNotFoundError:  # an install without the service pieces
        return
    register_worker_command(subparsers)
