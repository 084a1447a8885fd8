"""`nada models ...`: list, download and add the base generators of the registry.

Imported by `nada` at start-up, so it imports neither torch nor the checkpoint code until
a command needs them (`nada models list` stays fast and works without the `ml` extra).
"""

from __future__ import annotations

from typing import Any

from cli import model_files
from nada.errors import CLIError
from stylegan2 import registry


def register(subparsers: Any) -> None:
    models = subparsers.add_parser(
        "models",
        help="list, download and add base generators",
        description="The base StyleGAN2 generators this installation knows, and its cache "
        f"(${registry.CACHE_ENV}, default: the user's cache directory / stylegan-nada). "
        "NADA_GENERATOR_<NAME> (e.g. NADA_GENERATOR_FFHQ_1024) names a local file to use "
        "instead, or a mirror URL to download from.",
    )
    ACTIONS.register(models, dest="models_command")


def _not_random(name: str) -> None:
    if registry.parse_random_name(name) is not None:
        raise CLIError(f"{name} is built from a seed when used; there is nothing to download")


def _columns(info: registry.GeneratorInfo) -> tuple[str, str, str]:
    return info.name, str(info.size), info.domain


def _check_generator(info: registry.GeneratorInfo, path: str) -> None:
    """`add` copies only a loadable generator of the entry's architecture."""
    from stylegan2.checkpoint import CheckpointError, load_generator  # only now: torch

    try:
        loaded = load_generator(path)
    except (CheckpointError, OSError) as exc:
        raise CLIError(str(exc)) from None
    got = loaded.identity
    want = {"size": info.size, "style_dim": info.style_dim, "n_mlp": info.n_mlp}
    wrong = {k: got[k] for k, v in want.items() if got[k] != v}
    if wrong:
        have = ", ".join(f"{k} {v}" for k, v in wrong.items())
        need = ", ".join(f"{k} {want[k]}" for k in wrong)
        raise CLIError(f"{path} is not {info.name}: it has {have}; {info.name} needs {need}")


ACTIONS = model_files.FileActions(
    table=registry.GENERATORS,
    json_key="generators",
    header=("NAME", "SIZE", "DOMAIN", "CACHED"),
    columns=_columns,
    extra_rows=[("random-<size>", "8..1024", "seeded random weights", "-    (no download)")],
    list_help="show every generator and whether it is cached",
    json_help="print JSON instead of a table",
    pull_help="download a generator into the cache and verify it",
    add_help="copy a local .pt into the cache under a registry name (after checking it)",
    path_help="a rosinality-layout StyleGAN2 .pt file",
    check_name=_not_random,
    check_file=_check_generator,
)
