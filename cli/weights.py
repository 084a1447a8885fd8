"""`nada weights list | pull NAME | add NAME PATH`: the photo pipeline's model files
(invert/weights.py) in the cache, for machines that download ahead or have no network."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from invert import weights
from nada.errors import CLIError
from stylegan2.download import DownloadError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "weights",
        help="the photo pipeline's model files: e4e, face detector, VGG (list, pull, add)",
        description="Model files `nada invert` and the photo jobs use, kept in the cache "
        "next to the generators. `pull` downloads one ahead of time (resumable, checksummed); "
        "`add` copies a file you downloaded elsewhere into the cache. NADA_WEIGHTS_<NAME> "
        "(e.g. NADA_WEIGHTS_E4E_FFHQ) points at a file instead.",
    )
    p.set_defaults(func=lambda args: _usage(p))
    actions = p.add_subparsers(dest="weights_action", metavar="ACTION")
    listing = actions.add_parser("list", help="every model file and whether it is here")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_list)
    pull = actions.add_parser("pull", help="download a model file into the cache, verified")
    pull.add_argument("name", help="a name from `nada weights list`")
    pull.add_argument("--no-progress", action="store_true", help="no progress bar")
    pull.set_defaults(func=cmd_pull)
    add = actions.add_parser("add", help="copy a local file into the cache under NAME")
    add.add_argument("name", help="a name from `nada weights list`")
    add.add_argument("path", type=Path, help="the file")
    add.add_argument("--force", action="store_true", help="replace a different cached file")
    add.set_defaults(func=cmd_add)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _entry(name: str) -> weights.WeightFile:
    try:
        return weights.get_weights_info(name)
    except weights.UnknownWeightsError as exc:
        raise CLIError(f"argument name: {exc}") from None


def cmd_list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for entry in weights.list_weights():
        path = weights.local_path(entry.name)
        rows.append(
            {
                "name": entry.name,
                "description": entry.description,
                "size_mb": entry.size_mb,
                "here": path is not None and path.is_file(),
                "path": str(path) if path else None,
                "env": weights.env_var(entry.name),
                "url": entry.url,
                "sha256": entry.sha256,
                "source": entry.source,
            }
        )
    if args.json:
        print(
            json.dumps(
                {"cache_dir": str(weights.cache_path("e4e-ffhq").parent), "weights": rows}, indent=2
            )
        )
        return 0
    width = max(len(str(r["name"])) for r in rows)
    for row in rows:
        state = f"yes  {row['path']}" if row["here"] else f"no   (~{row['size_mb']:g} MB)"
        print(f"{row['name']:<{width}}  {state}")
        print(f"{'':<{width}}  {row['description']}")
    print(f"\ncache: {weights.cache_path('e4e-ffhq').parent}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    entry = _entry(args.name)
    try:
        path = weights.resolve(entry.name, progress=False if args.no_progress else None)
    except (DownloadError, FileNotFoundError) as exc:  # also ChecksumError
        raise CLIError(str(exc)) from None
    print(f"{entry.name}: {path} (verified)")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    entry = _entry(args.name)
    try:
        path = weights.install_file(entry.name, args.path, overwrite=args.force)
    except (DownloadError, FileNotFoundError, FileExistsError) as exc:
        raise CLIError(f"argument path: {exc}") from None
    print(f"{entry.name}: {path}")
    return 0
