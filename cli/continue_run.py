"""`nada adapt --resume-from-result DIR --steps N`: train a finished run on for N more steps.

The new run starts from DIR/resume.pt (the finished run's weights and Adam state), takes
DIR's parameters as its own, and numbers its steps after DIR's: its `steps` is DIR's plus N.
With nothing changed it ends where one run of the summed steps would. Flags that only steer
the steps to come (--lr, --layers, ...: nada/continuation.py) may change; a flag that would
change what DIR was trained toward or from is refused by name. A flag left at its default,
or set to DIR's own value, keeps DIR's value.

Imported by worker/cli.py when the flag is given: torch only once the run starts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli.declared import in_flags
from nada import rundir
from nada.continuation import CONTINUE_CHANGES, continued_params
from nada.errors import CLIError, InputError, ParamError
from nada.params import FIELD_NAMES, AdaptParams, describe, flag_of

FLAG = "--resume-from-result"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        FLAG,
        type=Path,
        default=None,
        metavar="DIR",
        help="continue the finished run in DIR (its resume.pt) for --steps more steps, "
        "into --out; DIR's parameters are the new run's",
    )
    p.add_argument(
        "--from-step",
        type=int,
        default=None,
        metavar="N",
        help=f"with {FLAG}: continue from DIR's snapshot of step N (DIR/snapshots/) instead "
        "of its last step; the new run's steps are N plus --steps",
    )


def parent_params(run_dir: Path) -> dict[str, Any]:
    """The finished run's parameters: its params.json (cheap), else resume.pt's own."""
    try:
        saved = json.loads(rundir.params_path(run_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        import torch

        saved = torch.load(run_dir / rundir.RESUME, map_location="cpu", weights_only=True)
        saved = (saved.get("metadata") or {}).get("params") or {}
    return {k: v for k, v in saved.items() if k in FIELD_NAMES}


def changes_from_args(args: argparse.Namespace, parent: dict[str, Any]) -> dict[str, Any]:
    """The parameters the flags change, refusing by flag one that may not change."""
    changes: dict[str, Any] = {}
    for spec in describe():
        name = spec["name"]
        if name == "steps":  # here: the steps to add
            continue
        if spec["type"] == "clip_models":
            _check_clip_flags(args, spec, parent)
            continue
        value = getattr(args, name, None)
        if spec["type"] == "images":
            if value:
                raise _refused(name)
            continue
        if value == spec.get("default") or value == parent.get(name):
            continue
        if name not in CONTINUE_CHANGES:
            raise _refused(name)
        changes[name] = value
    return changes


def _check_clip_flags(
    args: argparse.Namespace, spec: dict[str, Any], parent: dict[str, Any]
) -> None:
    models = parent.get("clip_models") or []
    names = ",".join(str(m.get("name")) for m in models)
    given = getattr(args, "clip_models", None)
    default = ",".join(c["name"] for c in spec["default"])
    if given not in (None, default, names):
        raise _refused("clip_models")
    weights = getattr(args, "clip_weights", None)
    if weights is not None:
        try:
            same = [float(w) for w in weights.split(",")] == [float(m["weight"]) for m in models]
        except (ValueError, KeyError, TypeError):
            same = False
        if not same:
            raise CLIError(f"argument --clip-weights: cannot change in a continuation ({FLAG})")


def _refused(name: str) -> CLIError:
    allowed = ", ".join(flag_of(n) for n in sorted(CONTINUE_CHANGES - {"steps"}))
    return CLIError(
        f"argument {flag_of(name)}: cannot change in a continuation ({FLAG}); only {allowed} can"
    )


def continuation_params(args: argparse.Namespace) -> tuple[AdaptParams, Path]:
    """The new run's parameters and the resume point it starts from, or a CLIError."""
    run_dir: Path = args.resume_from_result
    start = run_dir / rundir.RESUME
    if not run_dir.is_dir():
        raise CLIError(f"argument {FLAG}: no such directory {run_dir}")
    if not start.is_file():
        raise CLIError(
            f"argument {FLAG}: {run_dir} has no {rundir.RESUME}: it did not finish, or finished "
            "before continuations were kept; start a new run instead"
        )
    if getattr(args, "resume", None) is not None:
        raise CLIError(f"argument --resume: cannot be combined with {FLAG}")
    parent = parent_params(run_dir)
    from_step = getattr(args, "from_step", None)
    if from_step is not None and from_step != parent.get("steps"):
        start = rundir.snapshot_path(run_dir, from_step)
        if not start.is_file():
            kept = ", ".join(map(str, rundir.snapshot_steps(run_dir))) or "none"
            raise CLIError(
                f"argument --from-step: {run_dir} has no snapshot at step {from_step} "
                f"(kept: {kept})"
            )
        parent = {**parent, "steps": from_step}
    changes = changes_from_args(args, parent)
    try:
        params = continued_params(parent, args.steps, changes)
    except ParamError as exc:
        if exc.field in FIELD_NAMES:
            message = in_flags(exc.message, {n: flag_of(n) for n in FIELD_NAMES})
            raise CLIError(f"argument {flag_of(exc.field)}: {message}") from None
        raise CLIError(f"{run_dir}: {exc}") from None
    return params, start


def cmd_continue(args: argparse.Namespace) -> int:
    params, start = continuation_params(args)
    run_dir: Path = args.resume_from_result
    from cli.progress import print_summary, training_bar
    from stylegan2 import CheckpointError
    from worker.engine import ResumeError, resolve_device, run_adaptation

    try:
        resolve_device(args.device)
    except ValueError as exc:
        raise CLIError(f"argument --device: {exc}") from None
    # The example images of an image-guided run: the new run keeps its own links to them.
    names = [*getattr(params, "target_images", ()), *getattr(params, "source_images", ())]
    domain_images = {}
    for sha in names:
        src, dst = rundir.domain_image_path(run_dir, sha), rundir.domain_image_path(args.out, sha)
        if not src.is_file():
            raise CLIError(f"argument {FLAG}: {run_dir} lacks its example image {src.name}")
        domain_images[sha] = rundir.publish(src, dst)
    extra: dict[str, Any] = {"domain_images": domain_images} if domain_images else {}
    bar, on_progress = training_bar(
        params.steps, done=params.steps - args.steps, disabled=args.no_progress
    )
    try:
        result = run_adaptation(
            params, args.out, device=args.device, on_progress=on_progress, start_from=start,
            **extra,
        )  # fmt: skip
    except (ResumeError, InputError) as exc:
        raise CLIError(f"argument {FLAG}: {exc}") from None
    except CheckpointError as exc:  # the base generator's file
        raise CLIError(f"argument --generator: {exc}") from None
    finally:
        bar.close()
    from cli.snapshots import report

    print_summary(result, continued_from=str(run_dir), **report(args.out, result.steps, args))
    return 0
