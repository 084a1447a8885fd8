"""`nada invert`: put a photo into a generator's W+ here (align, e4e, refinement), and
optionally render that code through adapted generators (the edits).

Imported by `nada` at start-up: torch and the pipeline are imported only when the command
runs. Refusals name the flag: InvertParams' ParamError names a field, `_FLAGS` maps it back.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

from nada import rundir
from nada.errors import CLIError, ParamError
from nada.photo_params import ENCODER_AUTO, ENCODER_NONE, INVERT_RANGES, InvertParams

# InvertParams field -> its flag
_FLAGS = {
    "generator": "--generator",
    "encoder": "--encoder",
    "align": "--no-align",
    "refine_steps": "--refine-steps",
    "refine_lr": "--refine-lr",
    "pixel_weight": "--pixel-weight",
    "perceptual_weight": "--perceptual-weight",
    "latent_weight": "--latent-weight",
    "optimize_noise": "--optimize-noise",
    "sample_every": "--sample-every",
    "seed": "--seed",
}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(InvertParams)}
_EDIT_SIDE_BY_SIDE_TILE = 512  # px: tiles of side_by_side.png above this are shrunk


def register(subparsers: Any) -> None:
    """Add `nada invert` to the `nada` dispatcher."""
    p = subparsers.add_parser(
        "invert",
        help="put a photo into a generator's W+ (align, e4e encoder, refinement)",
        description="Find the W+ code of a face photo in a StyleGAN2 generator: FFHQ "
        "alignment, the e4e encoder, then refinement by optimisation. Writes OUT/latent.pt, "
        "OUT/aligned.png, OUT/reconstruction.png and OUT/samples/; with --adapted, also "
        "OUT/edit_<name>.png per adapted generator and OUT/side_by_side.png.",
    )
    p.add_argument("photo", type=Path, metavar="PHOTO", help="a JPEG, PNG or WebP photo")

    def number(name: str, kind: type, help: str) -> None:
        low, high = (str(int(v)) if kind is int else f"{v:g}" for v in INVERT_RANGES[name])
        p.add_argument(_FLAGS[name], type=kind, default=_DEFAULTS[name], dest=name,
                       help=f"{help} ({low}..{high}; default %(default)s)")  # fmt: skip

    p.add_argument("--generator", default=_DEFAULTS["generator"],
                   help="registry name, random-<size>, or a .pt (default %(default)s)")  # fmt: skip
    p.add_argument("--encoder", default=_DEFAULTS["encoder"],
                   help="auto (the generator's registered encoder, else none), none (start from "
                   "the mean latent), a registered name (e4e-ffhq) or an e4e .pt (default %(default)s)")  # fmt: skip
    p.add_argument("--no-align", dest="align", action="store_false",
                   help="the photo is an aligned crop already: centre-crop and resize only")  # fmt: skip
    number("refine_steps", int, "optimisation steps after the encoder; 0: the encoder's code")
    number("refine_lr", float, "Adam's learning rate of the refinement")
    number("pixel_weight", float, "weight of the pixel MSE")
    number("perceptual_weight", float, "weight of LPIPS-VGG, 0 turns it off")
    number("latent_weight", float, "pull toward the encoder's code (keeps it editable)")
    p.add_argument("--optimize-noise", action="store_true",
                   help="optimise the noise maps too (sharper, less editable)")  # fmt: skip
    number("sample_every", int, "steps between sample PNGs (0: only the last)")
    number("seed", int, "seeds the noise maps when they are optimised")
    p.add_argument("--adapted", action="append", default=[], metavar="PT",
                   help="render the code through this adapted generator too (repeatable)")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (%(default)s)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_invert)


def params_from_args(args: argparse.Namespace) -> InvertParams:
    """The InvertParams the flags describe; a refusal names the flag."""
    try:
        return InvertParams(**{name: getattr(args, name) for name in _FLAGS})
    except ParamError as exc:
        raise _flag_error(exc) from None


def _flag_error(exc: ParamError) -> CLIError:
    flag = _FLAGS.get(exc.field)
    return CLIError(f"argument {flag}: {exc.message}" if flag else str(exc))


def _check_generator(flag: str, name: str) -> None:
    """Refuse an unknown generator name or a missing file before loading anything."""
    from stylegan2 import registry

    try:
        registry.check_source(name)
    except ValueError as exc:
        raise CLIError(f"argument {flag}: {exc}") from None


def _check_encoder(name: str) -> None:
    from invert import weights

    if name in (ENCODER_AUTO, ENCODER_NONE) or Path(name).is_file():
        return
    if name in {w.name for w in weights.list_weights()}:
        return
    known = ", ".join(w.name for w in weights.list_weights() if w.name.startswith("e4e"))
    raise CLIError(
        f"argument --encoder: {name!r} is neither auto, none, a registered encoder "
        f"({known}) nor an existing file"
    )


def _edit_names(sources: list[str]) -> list[str]:
    """A file-name-safe name per --adapted: the file's stem, or its folder's name for an
    adapted.pt (runs/sketch/adapted.pt -> 'sketch'); repeated names get _2, _3, ..."""
    names: list[str] = []
    for source in sources:
        path = Path(source)
        base = path.parent.name if path.name == rundir.ADAPTED and path.parent.name else path.stem
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "edit"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


class _Generators:
    """The generators of one command, loaded once (the `models` run_inversion accepts)."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str], Any] = {}

    def generator(self, source: str, device: Any) -> Any:
        import stylegan2

        key = (source, str(device))
        if key not in self._loaded:
            loaded = stylegan2.load_generator(source, device=device)
            loaded.generator.eval().requires_grad_(False)
            self._loaded[key] = loaded
        return self._loaded[key]


def _load(models: _Generators, flag: str, source: str, device: Any) -> Any:
    from stylegan2.download import DownloadError

    try:
        return models.generator(source, device)
    except (ValueError, OSError, DownloadError) as exc:  # CheckpointError, unknown name, ...
        raise CLIError(f"argument {flag}: {exc}") from None


def cmd_invert(args: argparse.Namespace) -> int:
    params = params_from_args(args)
    from invert.photos import PhotoRejected, load_photo

    if not args.photo.is_file():
        raise CLIError(f"argument PHOTO: no such file {args.photo}")
    try:
        load_photo(args.photo)
    except PhotoRejected as exc:
        raise CLIError(f"argument PHOTO: {args.photo} {exc}") from None
    _check_generator("--generator", params.generator)
    _check_encoder(params.encoder)
    for source in args.adapted:
        _check_generator("--adapted", source)

    from tqdm import tqdm

    from invert.e4e import EncoderError
    from invert.images import side_by_side, tensor_to_uint8, write_png
    from invert.landmarks import NoFaceError
    from invert.latent import render_latent
    from invert.pipeline import run_inversion
    from nada.events import Progress
    from stylegan2.device import resolve_device
    from stylegan2.download import DownloadError

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise CLIError(f"argument --device: {exc}") from None
    models = _Generators()
    base = _load(models, "--generator", params.generator, device)
    edits = [(source, _load(models, "--adapted", source, device)) for source in args.adapted]
    for source, loaded in edits:
        if loaded.generator.n_latent != base.generator.n_latent:
            raise CLIError(
                f"argument --adapted: {source} is a {loaded.generator.size} px generator, but "
                f"--generator {params.generator} is {base.generator.size} px: a code of one "
                "does not fit the other"
            )

    # A bar on a terminal; one line per step where stderr is a log (the bar's redraws
    # would be one unreadable line there).
    live = sys.stderr.isatty()
    bar = tqdm(total=params.refine_steps, file=sys.stderr, unit="step",
               disable=args.no_progress or not live)  # fmt: skip

    def on_progress(event: Progress) -> None:
        if event.kind == "stage":
            bar.set_description(event.stage)
        if event.kind != "step":
            return
        loss = f"{event.losses.get('total', float('nan')):.4f}"
        pace = event.seconds_per_step
        if live:
            bar.n = event.step
            bar.set_postfix({"loss": loss, "s/step": f"{pace or 0:.2f}"}, refresh=False)
            bar.refresh()
        elif not args.no_progress:
            print(f"refining {event.step}/{event.total_steps} loss {loss} "
                  f"{pace or 0:.2f} s/step", file=sys.stderr, flush=True)  # fmt: skip

    try:
        result = run_inversion(
            params, args.out, photo_path=args.photo, device=str(device),
            on_progress=on_progress, models=models,
        )  # fmt: skip
    except ParamError as exc:
        raise _flag_error(exc) from None
    except EncoderError as exc:
        raise CLIError(f"argument --encoder: {exc}") from None
    except NoFaceError as exc:
        raise CLIError(f"argument PHOTO: {exc}") from None
    except DownloadError as exc:  # the message says how to place the file by hand
        raise CLIError(str(exc)) from None
    finally:
        bar.close()

    summary: dict[str, Any] = {
        "latent": str(result.latent),
        "sha256": result.latent_sha256,
        "aligned": str(result.aligned),
        "reconstruction": str(result.reconstruction),
        "samples": str(rundir.samples_dir(args.out)),
    }
    if edits:  # same size as the base (checked above): one row of equal tiles
        from invert.images import image_to_tensor
        from invert.latent import read_latent

        code = read_latent(result.latent)
        row = [
            image_to_tensor(_open_rgb(result.aligned)),
            image_to_tensor(_open_rgb(result.reconstruction)),
        ]
        summary["edits"] = []
        for name, (_, loaded) in zip(_edit_names(args.adapted), edits, strict=True):
            image = render_latent(loaded.generator, code.w_plus, code.noise)
            path = args.out / f"edit_{name}.png"
            write_png(path, tensor_to_uint8(image)[0])
            summary["edits"].append(str(path))
            row.append(image)
        grid = args.out / "side_by_side.png"
        write_png(grid, side_by_side(row, max_tile=_EDIT_SIDE_BY_SIDE_TILE))
        summary["side_by_side"] = str(grid)
    summary["seconds"] = round(result.seconds, 1)
    summary["note"] = result.note
    print(json.dumps(summary, indent=2))
    return 0


def _open_rgb(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")
