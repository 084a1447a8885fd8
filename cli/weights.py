"""`nada weights list | pull NAME | add NAME PATH`: the photo pipeline's model files
(invert/weights.py) in the cache, for machines that download ahead or have no network."""

from __future__ import annotations

from typing import Any

from cli import model_files
from invert import weights
from invert.weights import WeightFile


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "weights",
        help="the photo pipeline's model files: e4e, face detector, VGG (list, pull, add)",
        description="Model files `nada invert` and the photo jobs use, kept in the cache "
        "next to the generators. `pull` downloads one ahead of time (resumable, checksummed); "
        "`add` copies a file you downloaded elsewhere into the cache. NADA_WEIGHTS_<NAME> "
        "(e.g. NADA_WEIGHTS_E4E_FFHQ) points at a file instead, or at a mirror URL.",
    )
    ACTIONS.register(p, dest="weights_action")


def _columns(entry: WeightFile) -> tuple[str, str, str]:
    size = f"~{entry.size_mb:g} MB" if entry.size_mb else "?"
    return entry.name, size, entry.description


ACTIONS = model_files.FileActions(
    table=weights.WEIGHTS,
    json_key="weights",
    header=("NAME", "SIZE", "WHAT FOR", "AVAILABLE"),
    columns=_columns,
    list_help="every model file and its availability: cached, downloadable or manual",
    json_help="print JSON",
    pull_help="download a model file into the cache, verified",
    state_of=model_files.availability,  # the API's GET /weights says the same
    add_help="copy a local file into the cache under NAME",
    path_help="the file",
)
