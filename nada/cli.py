"""The `nada` command: one entry point, subcommands owned by the package that implements them.

Each package exposes `register(subparsers)` in its own `cli` module; they are imported lazily
inside `main` so that `nada serve` (the API) never imports torch, and `nada models list`
starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from nada import __version__
from nada.errors import CLIError

# (module, what it provides). Order is the order in `nada --help`.
_COMMAND_MODULES = (
    "stylegan2.cli",  # models list/pull
    "worker.cli",  # adapt, generate, worker
    "worker.explore_cli",  # video (a finished adaptation explored: an interpolation video)
    "invert.cli",  # invert (a photo into a generator's W+)
    "invert.weights_cli",  # weights list|pull|add (the photo pipeline's model files)
    "backend.cli",  # serve
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
