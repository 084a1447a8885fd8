"""`nada export`: a generator (an adapted.pt, any checkpoint or name) as a file NVIDIA's
tools read: a TensorFlow-layout StyleGAN2 pickle, which stylegan2-ada-pytorch's and
stylegan3's `legacy.load_network_pkl` (gen_images.py, projector.py, visualizer.py) convert
without TensorFlow and without running code from the file (stylegan2/tf_export.py).

A domain file (a modulation run's domain.pt, stylegan2/domain_file.py) exports onto its
base generator (checked by hash): as a full rosinality-layout .pt, or as that pickle.

Imported by `nada` at start-up: torch is imported only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nada.errors import CLIError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a StyleGAN2 generator as a pickle NVIDIA's tools read",
        description="Write a StyleGAN2 generator (an adapted.pt, a rosinality-layout .pt, an "
        "NVIDIA pickle or a registry name) as a TensorFlow-layout StyleGAN2 pickle: "
        "NVIDIA's stylegan2-ada-pytorch and stylegan3 code loads it with "
        "legacy.load_network_pkl (so gen_images.py, projector.py and visualizer.py take "
        "it). G and G_ema are the generator; D is a zero discriminator of the right shapes. "
        "StyleGAN3 generators cannot be written in this layout.",
    )
    p.add_argument("checkpoint", help="a .pt or .pkl file, a generator name, or a domain.pt")
    p.add_argument(
        "--out", type=Path, required=True,
        help="the .pkl to write; for a domain.pt also a .pt (the full generator, rosinality's "
        "layout)",
    )  # fmt: skip
    p.add_argument(
        "--base", default=None,
        help="a domain.pt's base generator (name or file; default: the one the domain "
        "records); refused unless it is the generator the domain was trained on",
    )  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not args.force:
        raise CLIError(f"argument --out: {out} exists (pass --force to replace it)")

    import stylegan2
    from stylegan2 import registry
    from stylegan2.domain_file import is_domain_file
    from stylegan2.errors import CheckpointError
    from stylegan2.tf_export import export_tf_pickle

    domain = is_domain_file(args.checkpoint)
    if out.suffix != ".pkl" and not (domain and out.suffix == ".pt"):
        raise CLIError(
            f"argument --out: NVIDIA's loaders expect a .pkl file (got {out}; a .pt is "
            "written for a domain.pt only)"
        )
    if args.base is not None and not domain:
        raise CLIError(f"argument --base: only a domain.pt has a base ({args.checkpoint} is none)")
    try:
        registry.check_source(args.checkpoint)
    except ValueError as exc:
        raise CLIError(f"argument checkpoint: {exc}") from None
    try:
        if domain:
            loaded = _export_domain(Path(args.checkpoint), args.base)
        else:
            loaded = stylegan2.load_generator(args.checkpoint)
        if out.suffix == ".pt":
            stylegan2.save_generator(out, loaded.generator, loaded.latent_avg, loaded.metadata)
            print(
                f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): the full generator in "
                "rosinality's layout"
            )
            return 0
        export_tf_pickle(loaded, out)
    except CheckpointError as exc:
        raise CLIError(str(exc)) from None
    print(
        f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): load it with NVIDIA's "
        "legacy.load_network_pkl, e.g. `python gen_images.py --network "
        f"{out} --seeds 0-7 --outdir out` in stylegan2-ada-pytorch or stylegan3"
    )
    return 0


def _export_domain(path: Path, base: str | None) -> Any:
    """The domain baked onto its base: the one named, else the one it records."""
    import stylegan2
    from stylegan2 import registry
    from stylegan2.domain_file import export_generator, read_domain, recorded_base

    domain = read_domain(path)
    kwargs: dict[str, Any] = {}
    if base is None:
        base, kwargs = recorded_base(domain)  # DomainError (a CheckpointError) if not here
    try:
        registry.check_source(base)
    except ValueError as exc:
        raise CLIError(f"argument --base: {exc}") from None
    return export_generator(domain, stylegan2.load_generator(base, **kwargs))
