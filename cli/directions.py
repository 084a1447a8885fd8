"""`nada directions ...`: list, download and add latent edit directions
(stylegan2/directions.py), the InterfaceGAN boundaries `--edit age=2` names.

Torch is imported only by `add` and `pull`, which read the file as every edit does
(worker/latent_edits.py: one tensor under caps, of its base generator's W shape).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cli import model_files
from nada.errors import CLIError
from stylegan2 import directions, registry
from stylegan2.directions import DirectionInfo

W_DIM = 512  # every registered base generator's W (StyleGAN2 and StyleGAN3 alike)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "directions",
        help="latent edit directions for --edit (list, pull, add)",
        description="Directions in a base generator's W space (InterfaceGAN's age, smile, "
        "pose, gender, hair_length and beard for ffhq-1024, as the original StyleGAN-NADA "
        "repository ships them) that `nada generate --edit age=2`, `nada video --edit-sweep` "
        "and the service's edits apply. `pull` downloads one into the cache; `add` copies a "
        "file you obtained elsewhere. NADA_DIRECTION_<NAME> (e.g. NADA_DIRECTION_AGE) points "
        "at a local file instead, or at a mirror URL.",
    )
    ACTIONS.register(p, dest="directions_action")


def _columns(entry: DirectionInfo) -> tuple[str, str, str, str]:
    suggested = ", ".join(f"{s:g}" for s in entry.suggested) or "-"
    return entry.name, entry.base, entry.description, suggested


def _check_file(entry: DirectionInfo, path: str) -> None:
    """`add` copies only a direction of its base's shape, read as every edit reads it."""
    from worker.latent_edits import DirectionError, read_direction  # only now: torch

    size = registry.parse_random_name(entry.base) or registry.get_generator_info(entry.base).size
    num_ws = 2 * (int(size).bit_length() - 1) - 2
    try:
        read_direction(Path(path), w_dim=W_DIM, num_ws=num_ws, name=entry.name)
    except DirectionError as exc:
        raise CLIError(str(exc)) from None


def _check_cached(entry: DirectionInfo) -> None:
    _check_file(entry, str(directions.resolve(entry.name, download_missing=False)))


ACTIONS = model_files.FileActions(
    table=directions.DIRECTIONS,
    json_key="directions",
    header=("NAME", "BASE", "WHAT", "SUGGESTED", "AVAILABLE"),
    columns=_columns,
    list_help="every edit direction: base generator, suggested strengths, availability",
    json_help="print JSON (every field, license and URL included, and where its file is)",
    pull_help="download an edit direction into the cache, verified",
    add_help="copy a local direction .pt into the cache under NAME (after reading it as a "
    "direction of its base's W)",
    path_help="a .pt holding one tensor [512], [1, 512] or [num_ws, 512]",
    check_file=_check_file,
    state_of=model_files.availability,
    after_fetch=_check_cached,
)
