"""`nada adapt`: run one adaptation on this machine, with a progress bar.

Imported by `nada` at start-up: torch and the engine are imported only when a command runs.
Refusals name the flag: the engine's ParamError names a parameter, its declaration the flag.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cli.declared import add_flag, in_flags
from nada.declare import specs
from nada.errors import CLIError, InputError, ParamError
from nada.params import FIELD_NAMES, IMAGE_FIELDS, AdaptParams, ClipSpec, describe, flag_of


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "adapt",
        help="adapt a generator to a text prompt (StyleGAN-NADA) on this machine",
        description="Shift a StyleGAN2 generator from what --source describes to what --target "
        "describes, guided by CLIP. Writes OUT/adapted.pt, OUT/samples/step_XXXXXX.png "
        "(source row over adapted row) and OUT/metrics.jsonl.",
    )
    add_param_arguments(p)
    p.add_argument("--resume", type=Path, default=None, help="an OUT/checkpoints/*.pt to continue")
    from cli import (
        continue_run,  # --resume-from-result: train a finished run on
        snapshots,  # --min-content, --min-diversity: the recommended step
    )

    continue_run.add_arguments(p)
    snapshots.add_arguments(p)
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
    type, default, range, unit and help come from there (cli/declared.py), so the CLI
    cannot drift from the API. The lists (CLIP models, example images) are spelled here."""
    for spec, entry in zip(specs(AdaptParams), describe(), strict=True):
        name, flag = spec.name, entry["flag"]
        if spec.type == "clip_models":
            default = ",".join(c["name"] for c in entry["default"])
            p.add_argument(flag, default=default, help=f"{spec.decl.help}: comma-separated "
                           "open_clip names, arch[:pretrained] (default %(default)s)")  # fmt: skip
            p.add_argument("--clip-weights", default=None,
                           help="comma-separated loss weight per model (default 1 each)")  # fmt: skip
        elif spec.type == "images":  # files here; the params hold their names
            p.add_argument(flag, nargs="+", default=[], dest=name, metavar="DIR|FILE",
                           help=f"{spec.decl.help}: image files, or folders of .jpg/.jpeg/.png/"
                           f".webp files, at most {entry['maxItems']}")  # fmt: skip
        else:
            add_flag(p, spec, flag)


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
    flags = {name: flag_of(name) for name in FIELD_NAMES}
    if exc.field not in FIELD_NAMES:
        return CLIError(in_flags(str(exc), flags))
    flag = flag_of(exc.field)
    if exc.field == "clip_models" and ("weight of" in exc.message or "weight >" in exc.message):
        flag = "--clip-weights"
    return CLIError(f"argument {flag}: {in_flags(exc.message, flags)}")


def _check_generator(name: str) -> None:
    """Refuse an unknown name or a missing file before loading anything."""
    from stylegan2 import registry

    try:
        registry.check_source(name)
    except ValueError as exc:  # UnknownGeneratorError lists the known names
        raise CLIError(f"argument --generator: {exc}") from None


def _remove_unused(out: Path) -> None:
    """Remove the output folder this command made for a run that was refused before its
    first step (a --generator file that is no checkpoint, a prompt too long for CLIP): no
    empty folder, or one holding only copies of the example images, is left behind. A
    folder with a checkpoint in it is a run's and stays."""
    if (out / "adapted.pt").exists() or (out / "checkpoints").exists():
        return
    shutil.rmtree(out, ignore_errors=True)


def _run_refusal(exc: Exception) -> CLIError:
    """The engine's refusal of a run before its first step, naming the flag."""
    from stylegan2 import CheckpointError
    from worker.engine import ResumeError

    if isinstance(exc, ParamError):
        return _flag_error(exc)
    if isinstance(exc, ResumeError):
        return CLIError(f"argument --resume: {exc}")
    if isinstance(exc, CheckpointError):  # the base generator's file
        return CLIError(f"argument --generator: {exc}")
    return CLIError(str(exc))  # InputError: an example image changed on disk under the run


def cmd_adapt(args: argparse.Namespace) -> int:
    if getattr(args, "resume_from_result", None) is not None:
        from cli.continue_run import cmd_continue

        return cmd_continue(args)
    if getattr(args, "from_step", None) is not None:
        raise CLIError("argument --from-step: needs --resume-from-result DIR")
    from worker.example_files import read_examples, store_examples

    examples = {name: read_examples(flag_of(name), getattr(args, name)) for name in IMAGE_FIELDS}
    params = params_from_args(
        args, {name: [e.sha256 for e in found] for name, found in examples.items()}
    )
    from cli.progress import print_summary, training_bar
    from stylegan2 import CheckpointError
    from worker.clip_models import check_clip_name
    from worker.engine import ResumeError, resolve_device, run_adaptation

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

    created = not args.out.exists()  # a refusal below removes the folder it made
    domain_images = store_examples([e for found in examples.values() for e in found], args.out)
    bar, on_progress = training_bar(params.steps, disabled=args.no_progress)

    try:
        result = run_adaptation(
            params,
            args.out,
            device=args.device,
            on_progress=on_progress,
            resume_from=args.resume,
            domain_images=domain_images,
        )
    except (ParamError, InputError, ResumeError, CheckpointError) as exc:
        if created:
            _remove_unused(args.out)
        raise _run_refusal(exc) from None
    finally:
        bar.close()
    from cli.snapshots import report

    print_summary(result, **report(args.out, result.steps, args))
    return 0
