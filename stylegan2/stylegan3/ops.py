"""StyleGAN3's two custom ops in plain PyTorch: the modulated convolution and the filtered
leaky ReLU.

Each has a reference implementation that defines the behaviour (`*_reference`: the
operations of NVIDIA's `modulated_conv2d` and `_filtered_lrelu_ref`, one after another) and
a fast one with the same contract, which the tests compare with it:

* `modulated_conv2d` scales the activations by the styles instead of building per-sample
  weights (one batched convolution with shared weights, the demodulation left as a
  per-sample output scale), as `stylegan2.model.ModulatedConv2d` does.
* `filtered_lrelu` applies the demodulation, the bias, the FIR stages (fir.py: banded
  matrix products) and the activation in one autograd function whose backward pass
  recomputes the up-sampled pre-activation from the layer's input instead of keeping it:
  that tensor, at two to four times the layer's resolution, is where NVIDIA's reference
  path spends most of its memory.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from stylegan2.ops import assert_shape, channel_dot, scaled_conv2d
from stylegan2.stylegan3.fir import LayerFilters, Padding, upfirdn2d_grouped_reference


def modulated_conv2d_reference(
    x: Tensor,  # [N, I, H, W]
    weight: Tensor,  # [O, I, k, k]
    styles: Tensor,  # [N, I]
    demodulate: bool = True,
    padding: int = 0,
    input_gain: Tensor | None = None,  # [] (a scalar) or [I] or [N, I]: scales the input
) -> Tensor:
    """NVIDIA's StyleGAN3 modulated convolution, with per-sample weights and a grouped conv.

    With demodulation the weight is first normalised per output channel and the styles by
    their RMS over the whole batch (a scale the demodulation then removes again: it only
    keeps the numbers in range for fp16). The input gain is applied after demodulation, so
    it is not normalised away. Returns [N, O, H + 2p - k + 1, W + 2p - k + 1].
    """
    n = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    assert_shape(x, [n, in_channels, None, None])
    assert_shape(styles, [n, in_channels])
    if demodulate:
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles.view(n, 1, in_channels, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
        w = w * dcoefs.view(n, out_channels, 1, 1, 1)
    if input_gain is not None:
        gain = input_gain.expand(n, in_channels)  # [N, I]
        w = w * gain.view(n, 1, in_channels, 1, 1)
    out = F.conv2d(
        x.reshape(1, n * in_channels, *x.shape[2:]),
        w.reshape(n * out_channels, in_channels, kh, kw).to(x.dtype),
        padding=padding,
        groups=n,
    )
    return out.reshape(n, out_channels, *out.shape[2:])


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    demodulate: bool = True,
    padding: int = 0,
    input_gain: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """`modulated_conv2d_reference` as conv2d(x * s * gain, w) and the demodulation
    coefficients [N, O] (None without demodulation) still to be applied per output channel:
    the same layer as a plain batched convolution (`stylegan2.ops.scaled_conv2d`, which
    keeps the unscaled input for backward). Callers apply the coefficients fused with the
    bias (`filtered_lrelu`'s `scale`)."""
    n = x.shape[0]
    out_channels, in_channels = weight.shape[:2]
    assert_shape(styles, [n, in_channels])
    dcoefs = None
    if demodulate:
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
        # sum over (I, k, k) of (w * s)^2 == s^2 @ sum_kk(w^2)^T
        dcoefs = (styles.square() @ weight.square().sum([2, 3]).t() + 1e-8).rsqrt()  # [N, O]
    scales = styles
    if input_gain is not None:
        scales = scales * input_gain.expand(n, in_channels)
    scales = scales.view(n, in_channels, 1, 1).to(x.dtype)
    return scaled_conv2d(x, scales, weight.to(x.dtype), padding=padding), dcoefs


def filtered_lrelu_reference(
    x: Tensor,  # [N, C, H, W]
    fu: Tensor | None,  # up-sampling filter: [K] separable, [K, K], or None (identity)
    fd: Tensor | None,  # down-sampling filter, the same forms
    bias: Tensor | None,  # [C]
    up: int = 1,
    down: int = 1,
    padding: Padding = (0, 0, 0, 0),  # of the up-sampled image, before the up-filter
    gain: float = math.sqrt(2),
    slope: float = 0.2,  # 1: linear
    clamp: float | None = None,  # clamp the activation to [-clamp, clamp]
) -> Tensor:
    """Bias, up-sample (zero insertion, pad, FIR with gain up**2), leaky ReLU * gain, clamp,
    down-sample (FIR, keep every `down`-th sample): NVIDIA's `_filtered_lrelu_ref`. Filters
    are applied as convolutions (not correlations). [N, C, H', W'] with
    H' = (H * up + py0 + py1 - (Ku - 1) - (Kd - 1) + down - 1) // down."""
    if bias is not None:
        x = x + bias.to(x.dtype).view(1, -1, 1, 1)
    x = upfirdn2d_grouped_reference(x, fu, up=up, padding=padding, gain=up**2)
    x = F.leaky_relu(x, slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d_grouped_reference(x, fd, down=down)


# -- the fast path ------------------------------------------------------------------------

CHUNK_ELEMENTS = 2**23  # up-sampled samples (32 MB in fp32) computed at once (see below)


def _scale_and_bias(x: Tensor, scale: Tensor | None, bias: Tensor | None) -> Tensor:
    """x * scale + bias as a new tensor; scale [N, C] per sample, bias [C]."""
    if scale is not None:
        out = x * scale.view(*scale.shape, 1, 1).to(x.dtype)
        return out.add_(bias.to(x.dtype).view(1, -1, 1, 1)) if bias is not None else out
    return x + bias.to(x.dtype).view(1, -1, 1, 1) if bias is not None else x.clone()


def _activate_(t: Tensor, slope: float, bound: float | None) -> Tensor:
    """leaky_relu(t) clamped to [-bound, bound], in place (slope 1: linear)."""
    if slope != 1:
        F.leaky_relu_(t, slope)
    return t.clamp_(-bound, bound) if bound is not None else t


def _channel_chunks(x: Tensor, filters: LayerFilters) -> list[slice]:
    """Channel ranges whose up-sampled tensor holds at most CHUNK_ELEMENTS samples: every
    step of the op is per channel, and computing a few channels at a time bounds the
    transient memory (at 1024 px one layer's up-sampled tensor is ~2 GB) at no cost in
    speed (the matrix products stay large)."""
    n, c = x.shape[:2]
    per_channel = n * filters.up_stage.out_size**2
    step = max(1, min(c, CHUNK_ELEMENTS // max(per_channel, 1)))
    return [slice(c0, min(c0 + step, c)) for c0 in range(0, c, step)]


def _part(t: Tensor | None, channels: slice, dim: int) -> Tensor | None:
    return None if t is None else t.narrow(dim, channels.start, channels.stop - channels.start)


class _FilteredLReLU(torch.autograd.Function):
    """down(clamp(gain * lrelu(up(x * scale + bias)))) that keeps only x and the small
    factors.

    The up-sampled pre-activation, at two to four times the layer's resolution, is the
    largest tensor of a StyleGAN3 layer; NVIDIA's reference path keeps it (and its
    activation) for backward. Here the backward pass recomputes it from x for the
    activation's local slope and pulls the gradient through the two linear FIR stages with
    their adjoints: the layer holds one tensor the size of x between the passes, and both
    passes work through the channels a chunk at a time. The gain (> 0) is applied to the
    small tensors: clamp(gain * a, c) == gain * clamp(a, c / gain), and the FIR is linear.
    """

    @staticmethod
    def forward(ctx, x, scale, bias, filters, gain, slope, clamp):  # noqa: ANN001, ANN205
        bound = None if clamp is None else clamp / gain
        n, c = x.shape[:2]
        size = filters.out_size
        out = x.new_empty(n, c, size, size)
        for part in _channel_chunks(x, filters):
            y = _scale_and_bias(x[:, part], _part(scale, part, 1), _part(bias, part, 0))
            t = _activate_(filters.up_stage.forward(y), slope, bound)
            del y
            out[:, part] = filters.down_stage.forward(t)
            del t
        if gain != 1:
            out.mul_(gain)
        ctx.save_for_backward(x, scale, bias)
        ctx.args = (filters, gain, slope, bound)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # noqa: ANN001, ANN205
        x, scale, bias = ctx.saved_tensors
        filters, gain, slope, bound = ctx.args
        need_x, need_scale, need_bias = ctx.needs_input_grad[:3]
        grad = torch.empty_like(x)  # d loss / d (x * scale + bias), then d loss / d x
        for part in _channel_chunks(x, filters):
            y = _scale_and_bias(x[:, part], _part(scale, part, 1), _part(bias, part, 0))
            # lrelu(pre-activation), unclamped: its sign and magnitude give the local slope
            act = _activate_(filters.up_stage.forward(y), slope, None)
            del y
            g = filters.down_stage.adjoint(grad_out[:, part].contiguous())  # d / d (out / gain)
            if (
                filters.down_stage.identity
            ):  # g may be grad_out itself: the steps below are in place
                g = g.clone()
            if slope != 1:  # act has the pre-activation's sign
                g = torch.ops.aten.leaky_relu_backward(g, act, slope, True)
            if bound is not None:
                g.masked_fill_(act.abs() > bound, 0)
            del act
            grad[:, part] = filters.up_stage.adjoint(g)
            del g
        if gain != 1:
            grad.mul_(gain)
        grad_scale = channel_dot(grad, x).to(scale.dtype) if need_scale else None
        grad_bias = grad.sum([0, 2, 3]).to(bias.dtype) if need_bias else None
        grad_x = None
        if need_x:
            grad_x = grad.mul_(scale.view(*scale.shape, 1, 1)) if scale is not None else grad
        return grad_x, grad_scale, grad_bias, None, None, None, None


def filtered_lrelu(
    x: Tensor,  # [N, C, H, W], H = W = the size `filters` was prepared for
    filters: LayerFilters,
    bias: Tensor | None,  # [C]
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    scale: Tensor | None = None,  # [N, C]: multiplies x before the bias (the demodulation)
) -> Tensor:
    """`filtered_lrelu_reference(x * scale, fu, fd, bias, up, down, padding, ...)` with the
    filters and padding prepared in `filters`; holds only x for the backward pass."""
    return _FilteredLReLU.apply(
        x.contiguous(), scale, bias, filters, float(gain), float(slope),
        None if clamp is None else float(clamp),
    )  # fmt: skip
