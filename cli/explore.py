"""`nada video` (an interpolation video through keyframe seeds, the base generator | the
adapted one side by side, as MP4 or GIF) and what `nada generate --base/--mix` draws (the
base generator's row over the adapted one's; style mixing grids): the page's "Explore"
section on the command line, through the same engine call (worker/renders.py) and the same
parameters (nada/render_params.py). `--strength[-coarse|-medium|-fine]` and `--blend RUN|PT=S`
dial and mix domains (worker/blends.py); `nada video --domains SEEDS` is the style video
through them.

Imported by `nada` at start-up: torch is imported only when a command runs. Refusals name
the flag.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cli.declared import add_flag, add_flags, flags_of, refusal
from nada import rundir
from nada.declare import spec_of
from nada.errors import CLIError, InputError, ParamError
from nada.render_params import BlendPart, RenderParams

# RenderParams field -> the flag of each command that sets it, as declared (a refusal names
# what the user typed). --generator/--base, --out (its suffix), --mix and generate's own
# --seeds and --truncation are spelled here; the rest are made from the declarations.
_VIDEO_FLAGS = flags_of(RenderParams, "video")
_GENERATE_FLAGS = flags_of(RenderParams, "generate")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "video",
        help="an interpolation video through seeds: base generator | adapted side by side",
        description="Walk through the keyframe seeds in W (linear, after truncation) and "
        "write each frame as the base generator's picture beside the adapted generator's, "
        "as MP4 (H.264) or GIF, chosen by --out's suffix (docs/explore.md).",
    )
    p.add_argument("--checkpoint", required=True, help="the adapted generator (adapted.pt)")
    p.add_argument("--generator", default=None, metavar="NAME|PATH",
                   help="the base generator (default: the one the checkpoint names)")  # fmt: skip
    add_flags(p, RenderParams, command="video",
              skip=("generator", "format", "edits", "blend", "domain_seeds"))  # fmt: skip
    add_edit_argument(p)
    add_blend_argument(p)
    p.add_argument("--domains", default=None, dest="domain_seeds", metavar="SEEDS",
                   help="instead of walking through --seeds: these seeds fixed (1..8, e.g. "
                   "'0-2') while the weights move from the base through --checkpoint's domain "
                   "and each --blend's (the style video)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (%(default)s)")
    p.add_argument("--out", type=Path, required=True, help="the video: a .mp4 or .gif path")
    p.set_defaults(func=cmd_video)


def _seeds(flag: str, text: str) -> tuple[int, ...]:
    from worker.samples import parse_seeds  # torch: imported when a command runs

    try:
        return tuple(parse_seeds(text))
    except ValueError as exc:
        raise CLIError(f"argument {flag}: {exc}") from None


# -- latent edits (nada/edits.py): --edit NAME=S, repeatable; a NAME may be a .pt path ---------


def add_edit_argument(p: argparse.ArgumentParser) -> None:
    """--edit, repeatable: one latent edit each (`nada generate`, `nada video`)."""
    from nada.edits import MAX_EDITS, MAX_STRENGTH

    p.add_argument(
        "--edit", action="append", default=[], dest="edits", metavar="NAME=STRENGTH",
        help=f"a latent edit in W+ before drawing, e.g. 'age=2' or 'smile=-1': a direction "
        f"of `nada directions list` or a direction .pt file, and its strength "
        f"(-{MAX_STRENGTH:g}..{MAX_STRENGTH:g}); repeat for several (at most {MAX_EDITS})",
    )  # fmt: skip


def edits_of(args: argparse.Namespace) -> tuple[str, dict[str, Path]]:
    """--edit's values as one edits text, and the files among their names (and
    --edit-sweep's): a name that is not a registry name is a path that must exist."""
    from nada.edits import Edit, parse_edits, parse_sweep

    text = ",".join(getattr(args, "edits", None) or [])
    try:
        names = [edit.name for edit in parse_edits(text, "edits", paths=True)]
        swept = parse_sweep(getattr(args, "edit_sweep", "") or "", paths=True)
    except ParamError as exc:
        flag = "--edit-sweep" if exc.field == "edit_sweep" else "--edit"
        raise CLIError(f"argument {flag}: {exc.message}") from None
    if swept is not None:
        names.append(swept.name)
    files: dict[str, Path] = {}
    for name in names:
        if Edit(name, 0).is_path:
            if not Path(name).is_file():
                raise CLIError(f"argument --edit: no such direction file: {name}")
            files[name] = Path(name)
    return text, files


# -- domain strength and blends (worker/blends.py): --strength[-*], --blend RUN|PT=STRENGTH ---

_STRENGTHS = ("strength", "strength_coarse", "strength_medium", "strength_fine")


def add_blend_argument(p: argparse.ArgumentParser) -> None:
    """--blend, repeatable: another adapted generator on the same base and its strength."""
    from nada.render_params import MAX_BLEND, MAX_DOMAIN_STRENGTH

    p.add_argument(
        "--blend", action="append", default=[], dest="blend", metavar="RUN|PT[=STRENGTH]",
        help="blend in another adapted generator of the same base: a run directory (its "
        f"adapted.pt) or a .pt, and its strength (0..{MAX_DOMAIN_STRENGTH:g}, default 1); "
        f"repeat for several (at most {MAX_BLEND}); with `nada video --domains`: the stops "
        "after --checkpoint",
    )  # fmt: skip


def blends_of(args: argparse.Namespace) -> tuple[dict[str, Any], list[Path]]:
    """The strength fields of --strength[-*] and --blend, and --blend's files in order."""
    parts, paths = [], []
    for text in getattr(args, "blend", None) or []:
        where, sep, value = text.rpartition("=")
        if not sep or Path(text).exists():
            where, value = text, "1"
        try:
            strength = float(value)
        except ValueError:
            raise CLIError(
                f"argument --blend: must be RUN|PT=STRENGTH, the strength a number (got {text!r})"
            ) from None
        path = Path(where) / rundir.ADAPTED if Path(where).is_dir() else Path(where)
        if not path.is_file():
            raise CLIError(f"argument --blend: no such adapted generator: {path}")
        parts.append(BlendPart(None, strength))
        paths.append(path)
    fields = {name: getattr(args, name) for name in _STRENGTHS if hasattr(args, name)}
    return {**fields, "blend": tuple(parts)}, paths


def _render(params: RenderParams, checkpoint: str, base: str | None, device: str,
            flags: dict[str, str], work: Path,
            direction_files: dict[str, Path] | None = None,
            blend_paths: Sequence[Path] = ()) -> Any:  # fmt: skip
    """run_render into `work`, every refusal named by its flag."""
    import stylegan2
    from stylegan2 import registry
    from stylegan2.device import resolve_device
    from worker.latent_edits import DirectionError
    from worker.renders import run_render

    for flag, source in (("--checkpoint", checkpoint), (flags["generator"], base)):
        try:
            if source is not None:
                registry.check_source(source)  # an unknown name or a missing file
        except ValueError as exc:
            raise CLIError(f"argument {flag}: {exc}") from None
    try:
        resolve_device(device)
    except ValueError as exc:
        raise CLIError(f"argument --device: {exc}") from None
    try:
        return run_render(params, work, checkpoint_path=checkpoint, generator_path=base,
                          device=device, direction_files=direction_files,
                          blend_paths=blend_paths)  # fmt: skip
    except DirectionError as exc:
        flag = "--edit-sweep" if exc.field == "edit_sweep" else "--edit"
        raise CLIError(f"argument {flag}: {exc}") from None
    except ParamError as exc:
        if exc.field == "generator":
            raise CLIError(
                f"argument {flags['generator']}: {checkpoint} does not name its base "
                f"generator; give {flags['generator']} NAME|PATH"
            ) from None
        raise refusal(exc, flags) from None
    except InputError as exc:
        raise CLIError(f"argument {flags['generator']}: {exc}") from None
    except stylegan2.CheckpointError as exc:
        raise CLIError(f"argument --checkpoint: {exc}") from None
    except (ValueError, OSError) as exc:  # unknown name, download failure, bad device
        raise CLIError(str(exc)) from None


def cmd_video(args: argparse.Namespace) -> int:
    suffix = args.out.suffix.lower().lstrip(".")
    if suffix not in ("mp4", "gif"):
        raise CLIError(f"argument --out: must end in .mp4 or .gif (got {str(args.out)!r})")
    edits, files = edits_of(args)
    strengths, blend_paths = blends_of(args)
    if args.domain_seeds is not None:  # --domains: the style video
        strengths.update(mode="domains", domain_seeds=_seeds("--domains", args.domain_seeds))
    try:
        params = RenderParams(
            **{"mode": "video", **strengths},
            edits=edits,
            edit_sweep=args.edit_sweep,
            keyframes=_seeds(_VIDEO_FLAGS["keyframes"], args.keyframes),
            frames=args.frames,
            fps=args.fps,
            truncation=args.truncation,
            format=suffix,
            max_tile=args.max_tile,
        )
    except ParamError as exc:
        raise refusal(exc, _VIDEO_FLAGS) from None
    with tempfile.TemporaryDirectory(dir=args.out.parent if args.out.parent.is_dir() else None,
                                     prefix=".nada-video-") as work:  # fmt: skip
        result = _render(params, args.checkpoint, args.generator, args.device, _VIDEO_FLAGS,
                         Path(work), files, blend_paths)  # fmt: skip
        path = rundir.publish(result.video, args.out)  # linked, or copied across disks
    print(f"{path} ({params.total_frames} frames at {params.fps} fps)")
    return 0


# -- nada generate --base / --mix -------------------------------------------------------------


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    """`nada generate`'s flags for drawing an adapted generator beside its base."""
    p.add_argument("--base", default=None, metavar="NAME|PATH",
                   help="draw this base generator's row over --checkpoint's, same seeds and "
                   "noise (with --mix: default the base the checkpoint names)")  # fmt: skip
    p.add_argument("--mix", default=None, metavar="ROWS:COLS",
                   help="style mixing grids: coarse styles from each ROWS seed, fine ones from "
                   "each COLS seed, e.g. '1,2,3:4,5' (base grid over adapted grid)")  # fmt: skip
    add_flag(p, spec_of(RenderParams, "crossover"), _GENERATE_FLAGS["crossover"])
    add_edit_argument(p)
    for name in _STRENGTHS:  # with any of them, or --blend: beside the base, as --base draws
        add_flag(p, spec_of(RenderParams, name), _GENERATE_FLAGS[name])
    add_blend_argument(p)


def wants_explore(args: argparse.Namespace) -> bool:
    strengths = (getattr(args, name, 1.0) for name in _STRENGTHS)
    return bool(getattr(args, "base", None) or getattr(args, "mix", None)
                or getattr(args, "blend", None) or any(s != 1 for s in strengths))  # fmt: skip


def cmd_generate_explore(args: argparse.Namespace) -> int:
    """`nada generate --base/--mix`: source over adapted, or the two mixing grids, in one PNG
    at full size (no tile cap on the command line)."""
    edits, files = edits_of(args)
    strengths, blend_paths = blends_of(args)
    fields: dict[str, Any] = {"truncation": args.truncation, "max_tile": 1024, "edits": edits,
                              **strengths}  # fmt: skip
    if args.mix:
        rows, sep, cols = args.mix.partition(":")
        if not sep:
            raise CLIError(
                f"argument --mix: must look like ROWS:COLS, e.g. '1,2:3,4' (got {args.mix!r})"
            )
        fields.update(mode="mix", row_seeds=_seeds("--mix", rows), column_seeds=_seeds("--mix", cols),
                      crossover=args.crossover)  # fmt: skip
    else:
        fields.update(mode="seeds", seeds=_seeds("--seeds", args.seeds))
    try:
        params = RenderParams(**fields)
    except ParamError as exc:
        raise refusal(exc, _GENERATE_FLAGS) from None
    with tempfile.TemporaryDirectory(prefix=".nada-generate-") as work:
        result = _render(params, args.checkpoint, args.base, args.device, _GENERATE_FLAGS,
                         Path(work), files, blend_paths)  # fmt: skip
        path = rundir.publish(result.image, args.out)
    print(path)
    return 0
