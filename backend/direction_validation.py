"""Checking and publishing an uploaded latent edit direction, in this (torch-free) process.

The check is `python -m stylegan2.direction_file SRC DST W_DIM NUM_WS` in a limited child
holding a validation slot, run by the one runner of every upload check
(backend/generator_validation.py `run_check`): one tensor, of the base generator's W shape,
finite, re-saved alone. Smaller limits than a generator's: a direction is a few KB.
"""

from __future__ import annotations

from pathlib import Path

from backend.generator_validation import UploadRejected, run_check, store_checked


class DirectionRejected(UploadRejected):
    """The upload is not an acceptable direction; str() says why (safe to show the user)."""


def store_direction(
    src: Path,
    folder: Path,
    name: str,
    *,
    base: str,
    w_dim: int,
    num_ws: int,
    owner: str | None,
    uploaded_at: str,
    max_validations: int | None = None,
) -> dict[str, object]:
    """Validate `src` as a direction of `base`'s W ([w_dim] or [num_ws, w_dim]) and publish
    it as `folder/<name>.pt` plus `folder/<name>.json` (jobs/directions.py reads them).

    Raises DirectionRejected, ValidatorsBusy, FileExistsError, OSError (ENOSPC)."""

    def check(tmp: Path) -> dict[str, object]:
        answer = run_check(
            ["stylegan2.direction_file", str(src), str(tmp), str(w_dim), str(num_ws)],
            src, DirectionRejected, memory_bytes=4 << 30, cpu_seconds=30, timeout_s=60.0,
            max_running=max_validations, owner=owner,
        )  # fmt: skip
        return {
            "name": name, "base": base, "shape": answer["shape"], "sha256": answer["sha256"],
            "uploaded_at": uploaded_at, "owner": owner,
        }  # fmt: skip

    return store_checked(folder, name, check)
