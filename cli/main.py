"""The `nada` command: one entry point and the one table of its subcommands.

Every subcommand is a module of this package with `register(subparsers)`. The modules import
only the standard library and torch-free parts at the top; torch, the engine and the API are
imported inside each command's function when it runs, so `nada serve` (the API) never imports
torch, and `nada models list` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from nada import __version__
from nada.errors import CLIError

# The modules of the subcommands, in the order of `nada --help`.
_COMMAND_MODULES = (
    "cli.models",  # models list|pull|add: the base generators
    "cli.adapt",  # adapt: one adaptation on this machine
    "cli.sweep",  # sweep: a grid of adaptations, here or on a service
    "cli.generate",  # generate: a grid of seeds (or a photo's code) from a checkpoint
    "cli.explore",  # video: a finished adaptation explored, as an interpolation video
    "cli.export",  # export: a StyleGAN2 generator as a pickle NVIDIA's tools read
    "cli.invert",  # invert: a photo into a generator's W+
    "cli.weights",  # weights list|pull|add: the photo pipeline's model files
    "cli.domains",  # domains list|pull|add: ready-made adapted generators
    "cli.directions",  # directions list|pull|add: latent edit directions (--edit age=2)
    "cli.worker",  # worker: a Celery worker taking jobs from the queues
    "cli.serve",  # serve: the API, the page and a local worker
    "cli.gc",  # gc: finished jobs' files past the retention removed
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nada",
        description="Text-driven domain adaptation of StyleGAN2 generators (StyleGAN-NADA).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A partial install (e.g. the API without the `ml` extra) still offers the rest.
            logging.getLogger(__name__).debug("commands from %s unavailable: %s", name, exc)
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Libraries that narrate every start-up step at INFO (alembic lists its plugins).
        for noisy in ("alembic", "httpx"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        parser.exit(2, f"nada: error: {exc}\n")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
