"""`nada models ...`: list, download and add the base generators of the registry.

Imported by `nada` at start-up, so it imports neither torch nor the checkpoint code until
a command needs them (`nada models list` stays fast and works without the `ml` extra).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from nada.errors import CLIError
from stylegan2 import registry
from stylegan2.download import DownloadError


def register(subparsers: Any) -> None:
    models = subparsers.add_parser(
        "models",
        help="list, download and add base generators",
        description="The base StyleGAN2 generators this installation knows, and its cache "
        f"(${registry.CACHE_ENV}, default: the user's cache directory / stylegan-nada).",
    )
    actions = models.add_subparsers(dest="models_command", metavar="ACTION")
    models.set_defaults(func=lambda args: _usage(models))

    listing = actions.add_parser("list", help="show every generator and whether it is cached")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=cmd_list)

    pull = actions.add_parser("pull", help="download a generator into the cache and verify it")
    pull.add_argument("name", help="a name from `nada models list`")
    pull.add_argument("--no-progress", action="store_true", help="no progress bar")
    pull.set_defaults(func=cmd_pull)

    add = actions.add_parser(
        "add", help="copy a local .pt into the cache under a registry name (after checking it)"
    )
    add.add_argument("name", help="a name from `nada models list`")
    add.add_argument("path", help="a rosinality-layout StyleGAN2 .pt file")
    add.add_argument("--force", action="store_true", help="replace a different cached file")
    add.set_defaults(func=cmd_add)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _info(name: str) -> registry.GeneratorInfo:
    if registry.parse_random_name(name) is not None:
        raise CLIError(f"{name} is built from a seed when used; there is nothing to download")
    try:
        return registry.get_generator_info(name)
    except registry.UnknownGeneratorError as exc:
        raise CLIError(str(exc)) from None


def cmd_list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for info in registry.list_generators():
        path = registry.cached_path(info.name)
        rows.append(
            {
                "name": info.name,
                "size": info.size,
                "domain": info.domain,
                "description": info.description,
                "cached": path is not None,
                "path": str(path) if path else None,
                "url": info.url,
                "sha256": info.sha256,
                "manual": info.manual,
                "source": info.source,
            }
        )
    if args.json:
        print(json.dumps({"cache_dir": str(registry.cache_dir()), "generators": rows}, indent=2))
        return 0

    table = [("NAME", "SIZE", "DOMAIN", "CACHED")]
    for row in rows:
        if row["cached"]:
            cached = f"yes  {row['path']}"
        else:
            cached = "no   (manual download, see below)" if row["manual"] else "no"
        table.append((row["name"], str(row["size"]), row["domain"], cached))
    table.append(("random-<size>", "8..1024", "seeded random weights", "-    (no download)"))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for name, size, domain, cached in table:
        print(f"{name:<{widths[0]}}  {size:>{widths[1]}}  {domain:<{widths[2]}}  {cached}")
    print(f"\ncache: {registry.cache_dir()} (set {registry.CACHE_ENV} to move it)")
    for row in rows:
        if row["manual"] and not row["cached"]:
            print(f"\n{row['name']}: {row['manual']}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    info = _info(args.name)
    was_cached = registry.cached_path(info.name) is not None
    try:
        path = registry.resolve(info.name, progress=False if args.no_progress else None)
        digest = registry.verify_cached(info.name)
    except DownloadError as exc:  # also ChecksumError, ManualDownloadError
        raise CLIError(str(exc)) from None
    state = "already cached, verified" if was_cached else "downloaded, verified"
    print(f"{info.name}: {path} ({state}; sha256 {digest})")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    info = _info(args.name)
    # Only now: torch and the model code.
    from stylegan2.checkpoint import CheckpointError, load_generator

    try:
        loaded = load_generator(args.path)
    except (CheckpointError, OSError) as exc:
        raise CLIError(str(exc)) from None
    got = loaded.identity
    want = {"size": info.size, "style_dim": info.style_dim, "n_mlp": info.n_mlp}
    wrong = {k: got[k] for k, v in want.items() if got[k] != v}
    if wrong:
        have = ", ".join(f"{k} {v}" for k, v in wrong.items())
        need = ", ".join(f"{k} {want[k]}" for k in wrong)
        raise CLIError(f"{args.path} is not {info.name}: it has {have}; {info.name} needs {need}")
    try:
        path = registry.install_file(info.name, args.path, overwrite=args.force)
    except (DownloadError, FileExistsError) as exc:
        raise CLIError(str(exc)) from None
    print(f"{info.name}: {path} (added; sha256 {got['sha256']})")
    return 0
