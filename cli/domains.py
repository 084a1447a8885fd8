"""`nada domains ...`: list, download and add ready-made domains (stylegan2/domains.py),
generators others adapted with StyleGAN-NADA, for `nada generate`, `nada video` and the
service's *Use* button without training.

Torch is imported only by `add` and `pull`, which check that the file is a generator of its
base's size (the worker's own check, worker/ready_made.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cli import model_files
from nada.errors import CLIError, InputError
from stylegan2 import domains
from stylegan2.domains import DomainInfo


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "domains",
        help="ready-made adapted generators, usable without training (list, pull, add)",
        description="Generators adapted by others with StyleGAN-NADA (the original authors' "
        "Hugging Face repository rinong/stylegan-nada-models), each with the base generator "
        "it was adapted from. `pull` downloads one into the cache; `add` copies a file you "
        "downloaded elsewhere. NADA_DOMAIN_<NAME> (e.g. NADA_DOMAIN_NADA_ANIME) points at a "
        "local file instead, or at a mirror URL.",
    )
    ACTIONS.register(p, dest="domains_action")


def _columns(entry: DomainInfo) -> tuple[str, str, str, str]:
    prompts = f"{entry.source_text} -> {entry.target_text}" if entry.target_text else "-"
    return entry.name, entry.base, entry.domain, prompts


def _check_file(entry: DomainInfo, path: str) -> None:
    """`add` copies only a generator of the base's size, read with an upload's checks."""
    from stylegan2.checkpoint import CheckpointError  # only now: torch
    from worker.ready_made import load_domain_file

    try:
        load_domain_file(entry, Path(path))
    except (CheckpointError, InputError, OSError) as exc:
        raise CLIError(str(exc)) from None


def _check_cached(entry: DomainInfo) -> None:
    """After `pull` and `add`: the file a job would use (the override's, else the cache's)
    must be a generator of the base's size."""
    _check_file(entry, str(domains.resolve(entry.name, download_missing=False)))


ACTIONS = model_files.FileActions(
    table=domains.DOMAINS,
    json_key="domains",
    header=("NAME", "BASE", "DOMAIN", "PROMPTS", "AVAILABLE"),
    columns=_columns,
    list_help="every ready-made domain: base generator, prompts, availability",
    json_help="print JSON (every field, license and URL included, and where its file is)",
    pull_help="download a ready-made domain into the cache, verified",
    add_help="copy a local .pt into the cache under NAME (after loading it as a generator of "
    "its base's size)",
    path_help="a rosinality-layout StyleGAN2 .pt ({'g_ema': ...}, as the authors publish)",
    check_file=_check_file,
    state_of=model_files.availability,
    after_fetch=_check_cached,
)
