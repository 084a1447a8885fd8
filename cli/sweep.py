"""`nada sweep`: the same prompt with several settings, one adaptation per combination.

Every `nada adapt` flag takes a list here: numbers, choices and true/false separated by
commas (`--layers 3,6,9,12 --steps 150,300`), prompts by '|' (`--target 'sketch|oil
painting'`). A flag with one value is shared by every run; flags with several make the grid
(jobs/sweeps.py: the same expansion and checks as POST /api/v1/sweeps, so a grid the CLI
accepts the service accepts). Locally the runs go one after another into OUT/NN-<label>/,
with OUT/sweep.json summing them up; with --server URL the grid is submitted to a service
instead (and followed with --wait).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.declared import in_flags
from jobs.sweeps import DEFAULT_MAX_JOBS, Combination, expand, varying
from nada.errors import CLIError, ParamError
from nada.params import FIELD_NAMES, IMAGE_FIELDS, describe, flag_of

if TYPE_CHECKING:
    from invert.example_images import ExampleImage

_TEXT_SEPARATOR = "|"  # prompts may hold commas


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="adapt with every combination of several settings and compare the runs",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for spec in describe():
        if spec["type"] == "clip_models":
            default = ",".join(c["name"] for c in spec["default"])
            p.add_argument(spec["flag"], dest=spec["name"], default=default,
                           help="CLIP models of every run, comma-separated (default %(default)s)")  # fmt: skip
            continue
        if spec["type"] == "images":  # the same pictures for every run
            p.add_argument(spec["flag"], dest=spec["name"], nargs="+", default=[],
                           metavar="DIR|FILE", help=f"{spec['help']}: the same for every run; "
                           "image files or folders of them")  # fmt: skip
            continue
        sep = _TEXT_SEPARATOR if spec["type"] == "string" and not spec.get("choices") else ","
        what = "'|'-separated" if sep == _TEXT_SEPARATOR else "comma-separated"
        p.add_argument(
            spec["flag"],
            dest=spec["name"],
            default=None,
            required=spec["required"],
            metavar="VALUES",
            help=f"{spec['help']}: one value or several, {what} (default {spec.get('default', 'required')})",
        )
    p.add_argument("--out", type=Path, help="where the runs go (local sweeps)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (%(default)s)")
    p.add_argument("--max-jobs", type=int, default=DEFAULT_MAX_JOBS,
                   help="refuse a grid of more runs than this (%(default)s)")  # fmt: skip
    p.add_argument("--server", help="submit to this service (http://host:port) instead")
    p.add_argument("--token", help="the service's API token (else $NADA_API_TOKEN)")
    p.add_argument("--wait", action="store_true", help="with --server: follow until done")
    p.set_defaults(func=cmd_sweep)


# -- the grid from the flags ---------------------------------------------------------------


def _typed(spec: dict[str, Any], text: str) -> Any:
    flag = spec["flag"]
    if spec["type"] == "integer":
        try:
            return int(text)
        except ValueError:
            raise CLIError(f"argument {flag}: {text!r} is not a whole number") from None
    if spec["type"] == "number":
        try:
            value = float(text)
        except ValueError:
            raise CLIError(f"argument {flag}: {text!r} is not a number") from None
        if not math.isfinite(value):
            raise CLIError(f"argument {flag}: {text!r} is not a finite number")
        return value
    if spec["type"] == "boolean":
        if text.lower() not in ("true", "false"):
            raise CLIError(f"argument {flag}: {text!r} is not true or false")
        return text.lower() == "true"
    return text


def base_and_grid(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The flags as a sweep: shared values (base) and swept ones (grid), in declaration order."""
    base: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    for spec in describe():
        raw = getattr(args, spec["name"])
        if raw is None or spec["type"] == "images":  # images: cmd_sweep reads the files
            continue
        if spec["type"] == "clip_models":
            names = [n.strip() for n in raw.split(",") if n.strip()]
            if not names:
                raise CLIError(f"argument {spec['flag']}: name at least one model")
            base["clip_models"] = [{"name": n, "weight": 1.0} for n in names]
            continue
        sep = _TEXT_SEPARATOR if spec["type"] == "string" and not spec.get("choices") else ","
        parts = [part.strip() for part in raw.split(sep)]
        if any(not part for part in parts):
            raise CLIError(f"argument {spec['flag']}: an empty value in {raw!r}")
        values = [_typed(spec, part) for part in parts]
        if len(values) == 1:
            base[spec["name"]] = values[0]
        else:
            grid[spec["name"]] = values
    if not grid:
        raise CLIError("nothing to sweep: give at least one flag several values (--layers 3,6,9)")
    return base, grid


def _flag_error(exc: ParamError) -> CLIError:
    name = exc.field.split(".", 1)[-1]
    try:
        flag = flag_of(name)
    except (KeyError, ValueError):
        return CLIError(str(exc))
    return CLIError(
        f"argument {flag}: {in_flags(exc.message, {n: flag_of(n) for n in FIELD_NAMES})}"
    )


# -- running it ----------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=_-]+", "-", text).strip("-")[:60] or "run"


def _last_losses(metrics: Path) -> dict[str, float]:
    try:
        lines = metrics.read_text().strip().splitlines()
        return dict(json.loads(lines[-1]).get("losses", {})) if lines else {}
    except (OSError, ValueError):
        return {}


def run_local(
    combos: list[Combination],
    out: Path,
    device: str,
    grid: dict[str, Any],
    examples: Sequence[ExampleImage] = (),  # the example images every run uses
) -> int:
    from worker.engine import run_adaptation
    from worker.example_files import store_examples
    from worker.model_cache import ModelCache

    models = ModelCache()  # CLIP and the base generator load once for every run
    summary: dict[str, Any] = {"grid": grid, "varying": varying(grid), "runs": []}
    out.mkdir(parents=True, exist_ok=True)
    for combo in combos:
        label = combo.label()
        folder = out / f"{combo.index + 1:02d}-{_slug(label)}"
        print(f"[{combo.index + 1}/{len(combos)}] {label} -> {folder}", file=sys.stderr)
        started = time.monotonic()
        images = store_examples(examples, folder)  # each run folder keeps its inputs
        result = run_adaptation(
            combo.params, folder, device=device, models=models, domain_images=images
        )
        summary["runs"].append(
            {
                "label": label,
                "values": combo.values,
                "dir": str(folder),
                "checkpoint": str(result.checkpoint),
                "losses": _last_losses(result.metrics),
                "seconds": round(time.monotonic() - started, 1),
            }
        )
        (out / "sweep.json").write_text(json.dumps(summary, indent=2))
    width = max(len(r["label"]) for r in summary["runs"])
    for run in summary["runs"]:
        loss = run["losses"].get("total")
        shown = f"{loss:.4f}" if isinstance(loss, float) else "-"
        print(f"{run['label']:<{width}}  loss {shown}  {run['seconds']:>7.1f} s  {run['dir']}")
    print(out / "sweep.json")
    return 0


def run_remote(
    args: argparse.Namespace,
    base: dict[str, Any],
    grid: dict[str, Any],
    examples: dict[str, list[ExampleImage]] | None = None,
) -> int:
    import os

    from cli.service_client import ServiceClient

    service = ServiceClient(args.server, args.token or os.environ.get("NADA_API_TOKEN"))
    base = {**base, **service.upload_examples(examples or {})}
    sweep = service.request("POST", "/sweeps", {"base": base, "grid": grid})
    where = service.url(f"/sweeps/{sweep['id']}")
    print(f"sweep {sweep['id']}: {sweep['count']} jobs queued ({where})")
    while args.wait and not sweep["done"]:
        time.sleep(5)
        sweep = service.request("GET", f"/sweeps/{sweep['id']}")
        counts = ", ".join(f"{n} {s}" for s, n in sorted(sweep["status"].items()))
        print(f"  {counts}", file=sys.stderr)
    for job in sweep["jobs"]:
        label = " ".join(f"{k}={job['params'].get(k)}" for k in sweep["varying"])
        loss = (job.get("losses") or {}).get("total")
        shown = f"{loss:.4f}" if isinstance(loss, float) else "-"
        print(f"{job['id']}  {job['status']:<9}  loss {shown}  {label}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from worker.example_files import read_examples  # Pillow: only when a command runs

    examples = {name: read_examples(flag_of(name), getattr(args, name)) for name in IMAGE_FIELDS}
    base, grid = base_and_grid(args)
    base.update({name: [e.sha256 for e in found] for name, found in examples.items() if found})
    try:
        combos = expand(base, grid, max_jobs=args.max_jobs)
    except ParamError as exc:
        raise _flag_error(exc) from None
    if args.server:
        return run_remote(args, base, grid, examples)
    if args.out is None:
        raise CLIError("argument --out: required for a local sweep (or pass --server URL)")
    for combo in combos:
        if combo.params.generator.endswith(".pt") and not Path(combo.params.generator).is_file():
            raise CLIError(f"argument --generator: no such file {combo.params.generator}")
    every = [e for found in examples.values() for e in found]
    return run_local(combos, args.out, args.device, grid, every)
