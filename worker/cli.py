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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nada import rundir
from nada.errors import CLIError, InputError, ParamError
from nada.params import FIELD_NAMES, IMAGE_FIELDS, AdaptParams, ClipSpec, describe, flag_of


def register(subparsers: Any) -> None:
    """Add this package's commands to the `nada` dispatcher."""
    _register_adapt(subparsers)
    from worker import sweep_cli  # `nada sweep`: the grid of `nada adapt` runs

    sweep_cli.register(subparsers)
    _register_generate(subparsers)
    _register_service_commands(subparsers)


# -- nada adapt ---------------------------------------------------------------------------


def _register_adapt(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "adapt",
        help="adapt a generator to a text prompt (StyleGAN-NADA) on this machine",
        description="Shift a StyleGAN2 generator from what --source describes to what --target "
        "describes, guided by CLIP. Writes OUT/adapted.pt, OUT/samples/step_XXXXXX.png "
        "(source row over adapted row) and OUT/metrics.jsonl.",
    )
    add_param_arguments(p)
    p.add_argument("--resume", type=Path, default=None, help="an OUT/checkpoints/*.pt to continue")
    from worker import continue_cli  # --resume-from-result: train a finished run on

    continue_cli.add_arguments(p)
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


def add_param_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per AdaptParams field, generated from its declaration (nada/params.py):
    type, default, unit and help come from there, so the CLI cannot drift from the API."""
    for spec in describe():
        name, flag = spec["name"], spec["flag"]
        unit = f"{spec['unit']}; " if spec["unit"] else ""
        if spec["type"] == "clip_models":
            default = ",".join(c["name"] for c in spec["default"])
            p.add_argument(flag, default=default, help=f"{spec['help']}: comma-separated "
                           "open_clip names, arch[:pretrained] (default %(default)s)")  # fmt: skip
            p.add_argument("--clip-weights", default=None,
                           help="comma-separated loss weight per model (default 1 each)")  # fmt: skip
        elif spec["type"] == "images":  # files here; the params hold their names
            p.add_argument(flag, nargs="+", default=[], dest=name, metavar="DIR|FILE",
                           help=f"{spec['help']}: image files, or folders of .jpg/.jpeg/.png/"
                           f".webp files, at most {spec['maxItems']}")  # fmt: skip
        elif spec["type"] == "boolean":
            p.add_argument(flag, action="store_true", default=spec["default"], help=spec["help"])
        elif spec["required"]:
            p.add_argument(flag, required=True, help=spec["help"])
        else:
            kind = {"integer": int, "number": float, "string": str}[spec["type"]]
            p.add_argument(flag, type=kind, default=spec["default"], dest=name,
                           help=f"{spec['help']} ({unit}default %(default)s)")  # fmt: skip


def params_from_args(
    args: argparse.Namespace, images: Mapping[str, Sequence[str]] | None = None
) -> AdaptParams:
    """The AdaptParams the flags describe; a refusal names the flag. `images`: the example
    images' names per field (target_images, source_images), once `read_examples` read them."""
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
        spec["name"]: getattr(args, spec["name"])
        for spec in describe()
        if spec["name"] not in ("clip_models", *IMAGE_FIELDS)
    }
    values.update({name: tuple(names) for name, names in (images or {}).items()})
    try:
        return AdaptParams(
            clip_models=tuple(ClipSpec(n, w) for n, w in zip(names, weights, strict=True)),
            **values,
        )
    except ParamError as exc:
        raise _flag_error(exc) from None


def _flag_error(exc: ParamError) -> CLIError:
    if exc.field not in FIELD_NAMES:
        return CLIError(str(exc))
    flag = flag_of(exc.field)
    if exc.field == "clip_models" and ("weight of" in exc.message or "weight >" in exc.message):
        flag = "--clip-weights"
    return CLIError(f"argument {flag}: {exc.message}")


def _check_generator(name: str) -> None:
    """Refuse an unknown name or a missing file before loading anything."""
    from stylegan2 import registry

    try:
        registry.check_source(name)
    except ValueError as exc:  # UnknownGeneratorError lists the known names
        raise CLIError(f"argument --generator: {exc}") from None


def cmd_adapt(args: argparse.Namespace) -> int:
    if getattr(args, "resume_from_result", None) is not None:
        from worker.continue_cli import cmd_continue

        return cmd_continue(args)
    from worker.example_files import read_examples, store_examples

    examples = {name: read_examples(flag_of(name), getattr(args, name)) for name in IMAGE_FIELDS}
    params = params_from_args(
        args, {name: [e.sha256 for e in found] for name, found in examples.items()}
    )
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

    domain_images = store_examples([e for found in examples.values() for e in found], args.out)
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
            domain_images=domain_images,
        )
    except ParamError as exc:
        raise _flag_error(exc) from None
    except InputError as exc:  # an example image changed on disk under the run
        raise CLIError(str(exc)) from None
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
                "samples": str(rundir.samples_dir(result.checkpoint.parent)),
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
        "one PNG. A seed always renders the same image. With --latent, the one image of a "
        "photo's code (`nada invert`'s latent.pt) instead.",
    )
    p.add_argument("--checkpoint", required=True, help="a .pt file or a generator name")
    p.add_argument("--seeds", default="0-7", help="'0-7' or '1,5,9' (%(default)s)")
    p.add_argument("--truncation", type=float, default=0.7, help="psi, 0..1 (%(default)s)")
    p.add_argument("--columns", type=int, default=8, help="images per row (%(default)s)")
    p.add_argument("--batch-size", type=int, default=4, help="images per pass (%(default)s)")
    p.add_argument("--latent", type=Path, default=None, metavar="PATH",
                   help="render this latent.pt (from `nada invert`) instead of seeds")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (%(default)s)")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    from worker import explore_cli  # --base, --mix: beside the base generator (torch-free)

    explore_cli.add_generate_arguments(p)
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from worker import explore_cli
    from worker.samples import parse_seeds

    if explore_cli.wants_explore(args):
        return explore_cli.cmd_generate_explore(args)

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
    code = _read_latent(args.latent) if args.latent is not None else None
    try:
        loaded = stylegan2.load_generator(args.checkpoint, device=device)
    except (ValueError, OSError) as exc:  # CheckpointError, unknown name, download failure
        raise CLIError(f"argument --checkpoint: {exc}") from None
    if code is not None:
        return _generate_latent(args, loaded.generator, code)
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


def _read_latent(path: Path) -> Any:
    from invert.latent import LatentError, read_latent

    try:
        return read_latent(path)
    except LatentError as exc:
        raise CLIError(f"argument --latent: {exc}") from None


def _generate_latent(args: argparse.Namespace, generator: Any, code: Any) -> int:
    """`nada generate --latent`: a photo's code (and its noise maps) through the generator."""
    from invert.latent import LatentError, render_latent
    from worker.samples import to_uint8, write_png

    try:
        image = render_latent(generator, code.w_plus, code.noise)
    except LatentError as exc:  # a code for another generator size
        raise CLIError(f"argument --latent: {exc} (--checkpoint {args.checkpoint})") from None
    print(write_png(args.out, to_uint8(image)[0]))
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
