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
        description="The base generators (StyleGAN2, StyleGAN3) this installation knows, "
        "and its cache "
        f"(${registry.CACHE_ENV}, default: the user's cache directory / stylegan-nada). "
        "NADA_GENERATOR_<NAME> (e.g. NADA_GENERATOR_FFHQ_1024) names a local file to use "
        "instead, or a mirror URL to download from.",
    )
    ACTIONS.register(models, dest="models_command")


def _not_random(name: str) -> None:
    if registry.parse_random_name(name) is not None:
        raise CLIError(f"{name} is built from a seed when used; there is nothing to download")


def _columns(info: registry.GeneratorInfo) -> tuple[str, ...]:
    size_mb = f"{info.size_mb:.0f}" if info.size_mb is not None else "?"
    license_ = info.license_id or ("see --json" if info.license else "-")
    return info.name, str(info.size), info.family, info.domain, license_, size_mb


def _check_generator(info: registry.GeneratorInfo, path: str) -> None:
    """`add` copies only a loadable generator of the entry's architecture: the same reader
    and limits as `--generator PATH` (an NVIDIA .pkl read as data, a .pt loaded safely)."""
    from stylegan2.checkpoint import CheckpointError, load_generator  # only now: torch

    try:
        loaded = load_generator(path)
    except (CheckpointError, OSError) as exc:
        raise CLIError(str(exc)) from None
    got = {**loaded.identity, "family": loaded.family}
    want: dict[str, object] = {
        "family": info.family,
        "size": info.size,
        "style_dim": info.style_dim,
    }
    if info.n_mlp is not None:
        want["n_mlp"] = info.n_mlp
    wrong = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
    if wrong:
        have = ", ".join(f"{k} {v}" for k, v in wrong.items())
        need = ", ".join(f"{k} {want[k]}" for k in wrong)
        raise CLIError(f"{path} is not {info.name}: it has {have}; {info.name} needs {need}")


def _convert(info: registry.GeneratorInfo) -> None:
    """After `pull` or `add` of a pickle entry: convert it into the cache now, so that the
    first job does not (stylegan2/converted.py; a no-op when already converted)."""
    if info.format != "nvidia-pkl":
        return
    from stylegan2.checkpoint import CheckpointError  # only now: torch
    from stylegan2.converted import load_registered
    from stylegan2.download import DownloadError

    try:
        loaded = load_registered(info.name)
    except (CheckpointError, DownloadError, OSError) as exc:
        raise CLIError(str(exc)) from None
    print(f"{info.name}: converted into {loaded.identity['path']}")


ACTIONS = model_files.FileActions(
    table=registry.GENERATORS,
    json_key="generators",
    header=("NAME", "SIZE", "FAMILY", "DOMAIN", "LICENSE", "MB", "AVAILABLE"),
    columns=_columns,
    extra_rows=[
        ("random-<size>", "8..1024", "stylegan2", "seeded random weights", "-", "-", "no download")
    ],
    list_help="show every generator: resolution, family, license, download size, availability",
    json_help="print JSON (every field of every entry, and where its file is) instead",
    pull_help="download a generator into the cache and verify it",
    add_help="copy a local .pt or NVIDIA .pkl into the cache under a registry name (after "
    "loading it as `--generator PATH` would)",
    path_help="a rosinality-layout StyleGAN2 .pt, our StyleGAN3 .pt, or an NVIDIA .pkl",
    check_name=_not_random,
    check_file=_check_generator,
    state_of=model_files.availability,
    after_fetch=_convert,
)
