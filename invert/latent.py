"""A photo's code: the `latent.pt` file (`w_plus`, optional noise maps, metadata) and its
render through any generator of the right size.

The file holds tensors and plain data only, so `torch.load(weights_only=True)` reads it and
scripts can reuse a code with any adapted checkpoint (`nada generate --latent`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from invert.refine import generator_noise, synthesize
from nada.errors import InputError

if TYPE_CHECKING:
    from stylegan2.model import Generator


class LatentError(InputError):
    """A latent.pt that cannot be read or does not fit the generator; str() says why (a
    ValueError; workers record it as `invalid_input`)."""


@dataclass(frozen=True)
class LatentCode:
    """The contents of a latent.pt."""

    w_plus: Tensor  # [1, n_latent, style_dim] float32, CPU
    noise: list[Tensor] | None  # per layer [1, 1, h, w] when refinement optimised them
    metadata: dict[str, Any]


def size_for(n_latent: int) -> int:
    """The resolution of a generator whose W+ has `n_latent` entries (18 -> 1024)."""
    return int(2 ** ((n_latent + 2) // 2))


@torch.no_grad()
def render_latent(
    generator: Generator,
    w_plus: Tensor,  # [1, n_latent, style_dim]
    noise: Sequence[Tensor] | None = None,  # per layer; None: the generator's fixed buffers
) -> Tensor:
    """The generator's image of a W+ code, [1, 3, S, S] float32 on the CPU in ~[-1, 1].

    Raises:
        LatentError: the code (or its noise maps) does not fit this generator.
    """
    device = next(generator.parameters()).device
    n_latent, style_dim = generator.n_latent, generator.style_dim
    if w_plus.ndim != 3 or w_plus.shape[0] != 1 or w_plus.shape[2] != style_dim:
        raise LatentError(f"w_plus must be [1, {n_latent}, {style_dim}] (got {list(w_plus.shape)})")
    if w_plus.shape[1] != n_latent:
        raise LatentError(
            f"the code has {w_plus.shape[1]} W+ entries (made for a "
            f"{size_for(w_plus.shape[1])} px generator), but this {generator.size} px "
            f"generator takes {n_latent}"
        )
    if noise is not None:
        want = [tuple(t.shape) for t in generator_noise(generator)]
        if [tuple(t.shape) for t in noise] != want:
            raise LatentError(
                f"the code's noise maps ({len(noise)}) do not fit this generator's ({len(want)})"
            )
        noise = [t.to(device=device, dtype=torch.float32) for t in noise]
    image = synthesize(generator, w_plus.to(device=device, dtype=torch.float32), noise)
    return image.float().cpu()


def latent_bytes(w_plus: Tensor, noise: Sequence[Tensor] | None, metadata: dict[str, Any]) -> bytes:
    """A latent.pt's bytes: tensors and plain data only (torch.load(weights_only=True))."""
    payload: dict[str, Any] = {"w_plus": w_plus.detach().float().cpu().contiguous()}
    if noise is not None:
        payload["noise"] = [t.detach().float().cpu().contiguous() for t in noise]
    payload["metadata"] = metadata
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def read_latent(path: Path) -> LatentCode:
    """Read a latent.pt written by `run_inversion` (never runs code from the file).

    Raises:
        LatentError: missing, not a torch file, or without a [1, n, style_dim] `w_plus`.
    """
    path = Path(path)
    if not path.is_file():
        raise LatentError(f"no such latent file: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load reports damage in many ways
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise LatentError(f"{path} is not a latent.pt written by `nada invert` ({first})") from None
    w_plus = data.get("w_plus") if isinstance(data, dict) else None
    if not isinstance(w_plus, Tensor) or w_plus.ndim != 3 or w_plus.shape[0] != 1:
        raise LatentError(f"{path} holds no w_plus of shape [1, n_latent, style_dim]")
    if not w_plus.is_floating_point() or not torch.isfinite(w_plus).all():
        raise LatentError(f"{path}: w_plus must hold finite floating-point values")
    noise = data.get("noise")
    if noise is not None and not (
        isinstance(noise, list) and all(isinstance(t, Tensor) and t.ndim == 4 for t in noise)
    ):
        raise LatentError(f"{path}: noise must be a list of [1, 1, h, w] tensors")
    metadata = data.get("metadata")
    return LatentCode(w_plus.float(), noise, metadata if isinstance(metadata, dict) else {})
