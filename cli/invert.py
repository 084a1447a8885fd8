"""`nada invert`: put a photo into a generator's W+ here (align, e4e, refinement), and
optionally render that code through adapted generators (the edits).

Imported by `nada` at start-up: torch and the pipeline are imported only when the command
runs. The parameters' flags come from InvertParams' declarations (cli/declared.py); a
refusal names the flag: InvertParams' ParamError names a field, its declaration the flag.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.declared import add_flags, flags_of, refusal
from nada import rundir
from nada.errors import CLIError, ParamError
from nada.photo_params import InvertParams, check_encoder, check_photo_family

if TYPE_CHECKING:
    from worker.model_cache import ModelCache

# InvertParams field -> its flag (photo_sha256 has none: the service's own)
_FLAGS = flags_of(InvertParams)
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
    add_flags(p, InvertParams)
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
    return refusal(exc, _FLAGS)


def _check_generator(flag: str, name: str) -> None:
    """Refuse an unknown generator name or a missing file before loading anything."""
    from stylegan2 import registry

    try:
        registry.check_source(name)
    except ValueError as exc:
        raise CLIError(f"argument {flag}: {exc}") from None


def _check_encoder(name: str) -> None:
    """The encoder rule (nada/photo_params.py), with a file's path allowed here."""
    from invert import weights

    try:
        check_encoder(name, set(weights.ENCODER_FOR_GENERATOR.values()),
                      is_file=lambda path: Path(path).is_file())  # fmt: skip
    except ParamError as exc:
        raise _flag_error(exc) from None


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


def _load(models: ModelCache, flag: str, source: str, device: Any) -> Any:
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
    from invert.landmarks import DetectorUnavailable, NoFaceError
    from invert.latent import render_latent
    from invert.pipeline import run_inversion
    from nada.events import Progress
    from stylegan2.device import resolve_device
    from stylegan2.download import DownloadError
    from worker.model_cache import ModelCache

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise CLIError(f"argument --device: {exc}") from None
    models = ModelCache()  # the generators load once for the code and the --adapted renders
    base = _load(models, "--generator", params.generator, device)
    edits = [(source, _load(models, "--adapted", source, device)) for source in args.adapted]
    for flag, source, loaded in [("--generator", params.generator, base)] + [
        ("--adapted", source, loaded) for source, loaded in edits
    ]:
        try:
            check_photo_family(loaded.family)
        except ParamError as exc:
            raise CLIError(f"argument {flag}: {source}: {exc.message}") from None
    for source, loaded in edits:
        if loaded.num_ws != base.num_ws:
            raise CLIError(
                f"argument --adapted: {source} is a {loaded.resolution} px generator, but "
                f"--generator {params.generator} is {base.resolution} px: a code of one "
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
    except DetectorUnavailable as exc:  # before DownloadError: it is one
        raise CLIError(
            f"{exc}\n(a photo that is a face crop already needs no face detector: --no-align)"
        ) from None
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
