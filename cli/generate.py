"""`nada generate`: render a grid of seeds (or a photo's code) from any generator checkpoint.

With --base, --mix, --strength or --blend it draws beside the base generator
(cli/explore.py). Imported by `nada`
at start-up: torch is imported only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nada.errors import CLIError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "generate",
        help="render a grid of images from a generator checkpoint",
        description="Render the images of the given seeds from any StyleGAN2 generator "
        "(an adapted.pt, a rosinality-layout .pt, a registry name or random-<size>) into "
        "one PNG. A seed always renders the same image. With --latent, the one image of a "
        "photo's code (`nada invert`'s latent.pt) instead. --edit age=2 moves every code "
        "along a latent edit direction first (docs/explore.md).",
    )
    p.add_argument("--checkpoint", required=True, help="a .pt file or a generator name")
    p.add_argument("--seeds", default="0-7", help="'0-7' or '1,5,9' (%(default)s)")
    p.add_argument("--truncation", type=float, default=0.7,
                   help=f"psi, 0..1; with --base or --mix {_render_truncation()} (%(default)s)")  # fmt: skip
    p.add_argument("--columns", type=int, default=8, help="images per row (%(default)s)")
    p.add_argument("--batch-size", type=int, default=4, help="images per pass (%(default)s)")
    p.add_argument("--latent", type=Path, default=None, metavar="PATH",
                   help="render this latent.pt (from `nada invert`) instead of seeds")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (%(default)s)")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    from cli import explore  # --base, --mix: beside the base generator (torch-free)

    explore.add_generate_arguments(p)
    p.set_defaults(func=cmd_generate)


def _render_truncation() -> str:
    """The range of a render's truncation (nada/render_params.py), which --base/--mix draw."""
    from nada.declare import bounds_text, spec_of
    from nada.render_params import RenderParams

    bounds = spec_of(RenderParams, "truncation").decl.range
    assert bounds is not None
    return bounds_text(bounds)


def cmd_generate(args: argparse.Namespace) -> int:
    from cli import explore
    from worker.samples import parse_seeds

    if explore.wants_explore(args):
        return explore.cmd_generate_explore(args)

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
    edits, files = explore.edits_of(args)
    code = _read_latent(args.latent) if args.latent is not None else None
    try:
        loaded = stylegan2.load_generator(args.checkpoint, device=device)
    except (ValueError, OSError) as exc:  # CheckpointError, unknown name, download failure
        raise CLIError(f"argument --checkpoint: {exc}") from None
    edit = _load_edits(args, loaded, edits, files)
    if code is not None:
        return _generate_latent(args, loaded.generator, code, edit)
    z, noise = seeded_inputs(seeds, loaded.generator)
    if edit is None:
        images = render(
            loaded.generator,
            z,
            noise,
            truncation=args.truncation,
            truncation_latent=loaded.latent_avg,
            batch_size=args.batch_size,
        )
    else:
        images = _render_edited(loaded, z, noise, args.truncation, args.batch_size, edit)
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


def _load_edits(args: argparse.Namespace, loaded: Any, edits: str, files: dict[str, Path]) -> Any:
    """--edit's directions for this generator (worker/latent_edits.py), or None."""
    if not edits:
        return None
    from nada.errors import ParamError
    from worker.latent_edits import DirectionError, load_edits

    try:
        return load_edits(edits, generator=args.checkpoint, w_dim=loaded.w_dim,
                          num_ws=loaded.num_ws, files=files)  # fmt: skip
    except (ParamError, DirectionError) as exc:
        raise CLIError(f"argument --edit: {getattr(exc, 'message', exc)}") from None


def _render_edited(loaded: Any, z: Any, noise: Any, truncation: float, batch: int,
                   edit: Any) -> Any:  # fmt: skip
    """Seeds drawn as `render` draws them (the same w, truncation and noise), their W+ moved
    by the edits first: strength 0 draws `render`'s pictures."""
    import torch

    from worker.renders import mapped_w, synthesize

    parts = []
    for start in range(0, z.shape[0], batch):
        part = slice(start, start + batch)
        w = mapped_w(loaded, z[part], truncation)
        w_plus = edit.apply(w.unsqueeze(1).expand(-1, loaded.num_ws, -1))
        parts.append(synthesize(loaded, w_plus, [n[part] for n in noise]))
    return torch.cat(parts)


def _read_latent(path: Path) -> Any:
    from invert.latent import LatentError, read_latent

    try:
        return read_latent(path)
    except LatentError as exc:
        raise CLIError(f"argument --latent: {exc}") from None


def _generate_latent(args: argparse.Namespace, generator: Any, code: Any, edit: Any) -> int:
    """`nada generate --latent`: a photo's code (and its noise maps) through the generator,
    moved by --edit's directions first."""
    from invert.latent import LatentError, render_latent
    from worker.samples import to_uint8, write_png

    w_plus = code.w_plus if edit is None else edit.apply(code.w_plus)
    try:
        image = render_latent(generator, w_plus, code.noise)
    except LatentError as exc:  # a code for another generator size
        raise CLIError(f"argument --latent: {exc} (--checkpoint {args.checkpoint})") from None
    print(write_png(args.out, to_uint8(image)[0]))
    return 0
