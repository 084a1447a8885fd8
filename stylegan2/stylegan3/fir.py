"""The FIR stages of StyleGAN3's filtered leaky ReLU: up-sampling and down-sampling.

`upfirdn2d_grouped_reference` is NVIDIA's `upfirdn2d` reference operation by operation (zero
insertion, padding, a depthwise convolution, decimation). `LayerFilters` is the fast form of a
layer's two stages, prepared once for the layer's image size: each separable stage as a
banded matrix per axis (`fir_matrix`, `BandedFIR`) applied with matrix products, and its
adjoint (the backward pass) as the transposed matrices; a radial (non-separable) down-filter
as a strided depthwise convolution and its transpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from stylegan2.ops import separable_factors

Padding = tuple[int, int, int, int]  # (x0, x1, y0, y1); negative values crop


def upfirdn2d_grouped_reference(
    x: Tensor,  # [N, C, H, W]
    f: Tensor | None,  # [K] (separable), [K, K], or None (identity)
    up: int = 1,
    down: int = 1,
    padding: Padding = (0, 0, 0, 0),
    gain: float = 1.0,  # scales the signal: a 2-D filter by gain, a 1-D one by sqrt(gain) per pass
) -> Tensor:
    """NVIDIA's upfirdn2d reference (`_upfirdn2d_ref`), operation by operation: insert
    up - 1 zeros after each sample, pad (negative values crop), convolve every channel with
    the filter (a depthwise conv2d; a 1-D filter as a pass along W, then one along H), keep
    every `down`-th sample. [N, C, H', W'],
    H' = (H * up + py0 + py1 - K + 1 + down - 1) // down."""
    px0, px1, py0, py1 = padding
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)  # zero insertion
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    if f is None:
        f = torch.ones(1, 1)
    f = f.to(x.device, x.dtype) * gain ** (f.ndim / 2)
    f = f.flip(list(range(f.ndim)))  # conv2d correlates; flipping makes it a convolution
    if f.ndim == 2:
        x = F.conv2d(x, f.expand(c, 1, *f.shape), groups=c)
    else:
        x = F.conv2d(x, f.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # along W
        x = F.conv2d(x, f.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # along H
    return x[:, :, ::down, ::down]


BLOCK_INPUTS = 160  # input samples per block of a banded FIR matrix (see BandedFIR)


def fir_matrix(
    n_in: int, taps: Sequence[float], up: int, down: int, pad0: int, pad1: int
) -> Tensor:
    """The 1-D upfirdn (zero insertion by `up`, pad, convolve with `taps`, keep every
    `down`-th sample) of a signal of length `n_in` as a matrix [n_out, n_in] (float64):
    out[j] = sum_m taps[K - 1 - pad0 + j * down - m * up] * x[m]."""
    k = torch.as_tensor(taps, dtype=torch.float64)
    n_out = (n_in * up + pad0 + pad1 - len(k)) // down + 1
    if n_out <= 0:
        raise ValueError(f"FIR output would be empty (input {n_in}, {len(k)} taps)")
    j = torch.arange(n_out).view(-1, 1)
    m = torch.arange(n_in).view(1, -1)
    index = len(k) - 1 - pad0 + j * down - m * up
    inside = (index >= 0) & (index < len(k))
    return torch.where(inside, k[index.clamp(0, len(k) - 1)], torch.zeros((), dtype=k.dtype))


class BandedFIR:
    """A 1-D FIR operator applied along H or W as dense matrix products, block by block.

    Although it multiplies zeros, one matrix product over all channels was 2-5x faster on a
    2-core CPU than FIR filtering done as shifted slices (stylegan2.ops' polyphase
    upfirdn2d: one pass over the tensor per tap) or as depthwise convolutions, at every
    layer size of a 256 px StyleGAN3. The operator is banded, so the output is cut into row
    blocks and each block multiplies only the input window it reads (about BLOCK_INPUTS
    samples), which bounds the wasted work at any resolution. The adjoint (the backward
    pass) is the transposed operator, blocked the same way.
    """

    def __init__(self, matrix: Tensor):
        self.n_out, self.n_in = matrix.shape
        self.matrix = matrix
        self.blocks = _band_blocks(matrix)  # [(r0, r1, c0, c1)]
        self._cache: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}

    def transpose(self) -> BandedFIR:
        return BandedFIR(self.matrix.t().contiguous())

    def _pieces(self, like: Tensor) -> list[Tensor]:
        key = (like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = [
                self.matrix[r0:r1, c0:c1].to(like.device, like.dtype).contiguous()
                for r0, r1, c0, c1 in self.blocks
            ]
        return self._cache[key]

    def apply(self, x: Tensor, dim: int) -> Tensor:
        """Filter x [N, C, H, W] along dim 2 (H) or 3 (W)."""
        if x.shape[dim] != self.n_in:
            raise ValueError(f"FIR expects {self.n_in} samples along dim {dim}, got {x.shape[dim]}")
        outs = []
        for (_, _, c0, c1), piece in zip(self.blocks, self._pieces(x), strict=True):
            window = x.narrow(dim, c0, c1 - c0)
            if dim == 2:
                outs.append(torch.matmul(piece, window))  # [r, c] @ [N, C, c, W]
            else:
                outs.append(torch.matmul(window, piece.t()))  # [N, C, H, c] @ [c, r]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim)


def _band_blocks(matrix: Tensor) -> list[tuple[int, int, int, int]]:
    """Row blocks (r0, r1) of a banded matrix with the column window (c0, c1) each reads,
    windows of about BLOCK_INPUTS columns."""
    nonzero = matrix != 0
    rows = nonzero.any(1)
    first = torch.where(rows, nonzero.float().argmax(1), 0).tolist()
    last = torch.where(rows, matrix.shape[1] - 1 - nonzero.flip(1).float().argmax(1), 0).tolist()
    blocks: list[tuple[int, int, int, int]] = []
    r0 = 0
    while r0 < matrix.shape[0]:
        c0, c1 = first[r0], last[r0] + 1
        r1 = r0 + 1
        while r1 < matrix.shape[0] and max(c1, last[r1] + 1) - min(c0, first[r1]) <= BLOCK_INPUTS:
            c0, c1 = min(c0, first[r1]), max(c1, last[r1] + 1)
            r1 += 1
        blocks.append((r0, r1, c0, c1))
        r0 = r1
    return blocks


class _Stage:
    """One FIR stage of the filtered leaky ReLU on images of a fixed size: separable (a
    BandedFIR per axis, and their transposes for backward) or, for a radial down-filter, a
    strided depthwise convolution."""

    def __init__(
        self, f: Tensor | None, up: int, down: int, padding: Padding, in_size: int, gain: float
    ):
        self.kernel = _kernel_2d(f, gain)  # [K, K] float64
        factors = separable_factors(self.kernel)
        px0, px1, py0, py1 = padding
        self.in_size = in_size
        self.down = down
        self.axes: tuple[BandedFIR, BandedFIR] | None = None
        self.adjoint_axes: tuple[BandedFIR, BandedFIR] | None = None
        self.identity = (
            up == down == 1 and padding == (0, 0, 0, 0) and self.kernel.tolist() == [[1.0]]
        )  # ToRGB's stages
        if self.identity:
            self.out_size = in_size
        elif factors is not None:
            ky, kx = factors
            along_h = BandedFIR(fir_matrix(in_size, ky, up, down, py0, py1))
            along_w = BandedFIR(fir_matrix(in_size, kx, up, down, px0, px1))
            self.axes = (along_h, along_w)
            self.adjoint_axes = (along_h.transpose(), along_w.transpose())
            self.out_size = along_h.n_out
        elif up == 1 and padding == (0, 0, 0, 0):
            self.out_size = (in_size - self.kernel.shape[0]) // down + 1
        else:
            raise ValueError("a non-separable up-sampling filter has no fast path")

    def forward(self, x: Tensor) -> Tensor:
        if self.identity:
            return x
        if self.axes is not None:
            return self.axes[1].apply(self.axes[0].apply(x, 2), 3)
        c = x.shape[1]
        return F.conv2d(x, self._depthwise(x, c), stride=self.down, groups=c)

    def adjoint(self, grad: Tensor) -> Tensor:
        if self.identity:
            return grad
        if self.adjoint_axes is not None:
            return self.adjoint_axes[1].apply(self.adjoint_axes[0].apply(grad, 2), 3)
        c, k = grad.shape[1], self.kernel.shape[0]
        extra = self.in_size - ((grad.shape[2] - 1) * self.down + k)
        return F.conv_transpose2d(
            grad, self._depthwise(grad, c), stride=self.down, output_padding=extra, groups=c
        )

    def _depthwise(self, like: Tensor, channels: int) -> Tensor:
        """The kernel as a depthwise conv2d weight [C, 1, K, K] (flipped: conv2d correlates)."""
        k = torch.flip(self.kernel, [0, 1]).to(like.device, like.dtype)
        return k.expand(channels, 1, *k.shape).contiguous()


def _kernel_2d(f: Tensor | None, gain: float) -> Tensor:
    """A filter buffer as a 2-D kernel times `gain` (float64): None is [[1]], a 1-D filter
    the outer product with itself."""
    if f is None:
        return torch.full((1, 1), float(gain), dtype=torch.float64)
    f = f.detach().to("cpu", torch.float64)
    return (torch.outer(f, f) if f.ndim == 1 else f) * gain


class LayerFilters:
    """A layer's up- and down-sampling stages, prepared once for its input size."""

    def __init__(
        self,
        fu: Tensor | None,
        fd: Tensor | None,
        up: int,
        down: int,
        padding: Padding,
        in_size: int,  # height = width of the filtered lrelu's input (the conv's output)
    ):
        self.up_stage = _Stage(fu, up, 1, padding, in_size, gain=up**2)
        self.down_stage = _Stage(fd, 1, down, (0, 0, 0, 0), self.up_stage.out_size, gain=1)
        self.out_size = self.down_stage.out_size
