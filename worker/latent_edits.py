"""Latent edits applied: directions read safely, then W+ <- W+ + strength * direction.

A direction is a tensor in a generator's W space: `[w_dim]` (one direction for every W+
entry; InterfaceGAN's `[1, w_dim]` is read as that) or `[num_ws, w_dim]` (one per entry),
the layout of the original StyleGAN-NADA repository's `editing/interfacegan_boundaries/`.
The edits come as text ("age=2,smile=-1", nada/edits.py); a name is a registry entry
(stylegan2/directions.py: resolved, downloaded once, verified) unless the caller hands a
file for it (`files`: the command line's own paths; a worker's, the service's uploads of
jobs/directions.py). Nothing else is ever opened, so a service job's params cannot name a
path on the worker. Files are read by stylegan2/direction_file.py (caps, weights_only).

Both engines call this module: renders (worker/renders.py: seeds, mixing, a video that
sweeps an edit) and photo edits (worker/runners.py hands `apply` to invert.pipeline.run_edit).
`apply_edits` is the pure function; the rest reads files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from nada.edits import EditSweep, parse_edits, parse_sweep
from nada.errors import ParamError
from stylegan2 import directions as registry
from stylegan2.direction_file import MAX_FILE_BYTES, DirectionError, read_direction

__all__ = [
    "MAX_FILE_BYTES",
    "DirectionError",
    "LatentEdits",
    "apply_edits",
    "load_edits",
    "read_direction",
    "w_plus_editor",
]


# -- the math -------------------------------------------------------------------------------


def apply_edits(w_plus: Tensor, edits: Sequence[tuple[Tensor, float | Tensor]]) -> Tensor:
    """W+ [N, num_ws, D] moved along each direction: w_plus + sum(strength * direction).

    A direction [D] moves every W+ entry alike; [num_ws, D] moves each entry by its own row.
    A strength is a number, or a tensor [N] of one strength per picture (a video's sweep).
    Returns a new tensor (the input is not changed); no edits return `w_plus` itself.
    """
    if not edits:
        return w_plus
    out = w_plus.clone()
    for direction, strength in edits:
        d = direction.to(device=out.device, dtype=out.dtype)
        if d.dim() == 1:
            d = d.reshape(1, 1, -1)  # [1, 1, D]: every entry
        else:
            d = d.unsqueeze(0)  # [1, num_ws, D]
        if isinstance(strength, Tensor):
            s = strength.to(device=out.device, dtype=out.dtype).reshape(-1, 1, 1)  # [N, 1, 1]
            out = out + s * d
        else:
            out = out + float(strength) * d
    return out


# -- the edits of a job -----------------------------------------------------------------------


@dataclass(frozen=True)
class LatentEdits:
    """A render's or a photo edit's edits, read: the fixed ones, and a video's sweep."""

    fixed: tuple[tuple[Tensor, float], ...] = ()  # (direction, strength) for every picture
    sweep: tuple[Tensor, EditSweep] | None = None  # a video's direction and its strengths

    def apply(self, w_plus: Tensor) -> Tensor:
        """W+ [N, num_ws, D] with the fixed edits."""
        return apply_edits(w_plus, self.fixed)

    def apply_sweep(self, w_plus: Tensor, frames: Sequence[int], total: int) -> Tensor:
        """W+ [N, num_ws, D] of video frames `frames` (of `total`) with the sweep's
        strength of each frame; unchanged without a sweep."""
        if self.sweep is None:
            return w_plus
        direction, sweep = self.sweep
        strengths = torch.tensor([sweep.at(f, total).strength for f in frames])
        return apply_edits(w_plus, [(direction, strengths)])


def _check_base(name: str, generator: str | None, field: str) -> None:
    """A registry direction is found in one base's W: refused on a generator of another
    name (a path or an unnamed generator: the shape check only)."""
    base = registry.get_direction_info(name).base
    if generator and generator != base and not _is_path(generator):
        raise ParamError(
            field,
            f"direction {name!r} is in the W space of {base!r}; this generator is "
            f"{generator!r} (register a direction for it with `nada directions add`)",
        )


def _is_path(generator: str) -> bool:
    return "/" in generator or "\\" in generator or generator.endswith((".pt", ".pkl"))


def _direction(
    name: str, field: str, *, generator: str | None, w_dim: int, num_ws: int,
    files: Mapping[str, Path],
) -> Tensor:  # fmt: skip
    try:
        if name in files:
            return read_direction(Path(files[name]), w_dim=w_dim, num_ws=num_ws, name=name)
        if name not in registry.direction_names():
            known = ", ".join(registry.direction_names())
            raise ParamError(field, f"name an unknown edit direction {name!r}; known: {known}")
        _check_base(name, generator, field)
        try:
            path = registry.resolve(name)
        except (registry.UnknownDirectionError, OSError) as exc:  # DownloadError: an OSError
            raise DirectionError(str(exc)) from None
        return read_direction(path, w_dim=w_dim, num_ws=num_ws, name=name)
    except DirectionError as exc:
        exc.field = field
        raise


def load_edits(
    edits: str,
    sweep: str = "",
    *,
    generator: str | None,
    w_dim: int,
    num_ws: int,
    files: Mapping[str, Path] | None = None,
) -> LatentEdits:
    """The directions `edits` ("age=2,smile=-1") and `sweep` ("age=-3:3") name, read for a
    generator of `w_dim` / `num_ws` named `generator` (a registry direction of another base
    is refused). `files` maps names to the caller's own files (the CLI's paths); every other
    name must be a registry direction.

    Raises:
        ParamError: field 'edits' / 'edit_sweep': an unknown name, a direction of another base.
        DirectionError: a direction file that is not one, or of another shape; a registry
            file that cannot be downloaded.
    """
    files = files or {}

    def direction(name: str, field: str) -> Tensor:
        return _direction(name, field, generator=generator, w_dim=w_dim, num_ws=num_ws,
                          files=files)  # fmt: skip

    fixed = tuple(
        (direction(edit.name, "edits"), edit.strength) for edit in parse_edits(edits, paths=True)
    )
    swept = parse_sweep(sweep, paths=True)
    sweep_of = None if swept is None else (direction(swept.name, "edit_sweep"), swept)
    return LatentEdits(fixed=fixed, sweep=sweep_of)


def w_plus_editor(
    edits: str, *, generator: str | None = None, files: Mapping[str, Path] | None = None
) -> Callable[[Tensor], Tensor]:
    """A photo edit's edits as a function of its code: W+ [1, num_ws, D] -> edited W+, the
    directions read for the code's own shape (invert.pipeline.run_edit calls it once);
    `files` as for `load_edits`."""

    def edit(w_plus: Tensor) -> Tensor:
        num_ws, w_dim = int(w_plus.shape[1]), int(w_plus.shape[2])
        found = load_edits(edits, generator=generator, w_dim=w_dim, num_ws=num_ws, files=files)
        return found.apply(w_plus)

    return edit
