"""The generator's custom ops in plain PyTorch: FIR up/down-sampling, bias + activation.

Each op has a reference implementation that defines its behaviour (`*_reference`, a direct
port of the widely used `upfirdn2d_native`) and the fast implementation the model uses.
The fast paths are still plain PyTorch (CPU and CUDA, differentiable), and the tests compare
them with the references:

* `upfirdn2d` filters separably and polyphase: instead of inserting zeros and running a
  one-channel 2-D convolution over every channel (where the reference spends ~40% of the
  generator's time), each output phase is a short 1-D filter of the input, applied as a
  few scaled, shifted slices per axis.
* `fused_leaky_relu` keeps only its output for the backward pass (one tensor instead of two),
  like the CUDA kernel of the original code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def assert_shape(tensor: Tensor, shape: Sequence[int | None]) -> None:
    """Fail loudly if `tensor` does not have `shape` (None matches any size)."""
    if tensor.ndim != len(shape) or any(
        want is not None and have != want for have, want in zip(tensor.shape, shape, strict=True)
    ):
        raise AssertionError(f"wrong shape: got {list(tensor.shape)}, expected {list(shape)}")


def make_kernel(k: Sequence[float] | Tensor) -> Tensor:
    """A normalised 2-D FIR kernel; a 1-D list means the outer product with itself."""
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def separable_factors(
    kernel: Tensor, rtol: float = 1e-6
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Split a 2-D kernel into 1-D taps (ky, kx) with kernel == outer(ky, kx), or None.

    Row and column sums of a rank-1 kernel a b^T are a*sum(b) and b*sum(a), so they recover
    the factors up to a scale we fix by dividing by the total.
    """
    k = kernel.detach().to("cpu", torch.float64)
    if k.ndim != 2 or k.sum() == 0:
        return None
    ky = k.sum(1)
    kx = k.sum(0) / k.sum()
    if not torch.allclose(torch.outer(ky, kx), k, rtol=rtol, atol=rtol * k.abs().max().item()):
        return None
    return tuple(ky.tolist()), tuple(kx.tolist())


def _pad4(pad: Sequence[int]) -> tuple[int, int, int, int]:
    """(p0, p1) applies to both axes; (x0, x1, y0, y1) sets each side."""
    if len(pad) == 2:
        return pad[0], pad[1], pad[0], pad[1]
    if len(pad) == 4:
        return pad[0], pad[1], pad[2], pad[3]
    raise ValueError(f"pad must have 2 or 4 entries (got {len(pad)})")


def upfirdn2d_reference(
    input: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: Sequence[int] = (0, 0)
) -> Tensor:
    """Upsample (zero insertion), pad, FIR-filter with `kernel`, downsample. [N,C,H,W] in and out.

    The behaviour every other implementation must match; slow because the filter runs as a
    one-channel convolution over N*C images.
    """
    pad_x0, pad_x1, pad_y0, pad_y1 = _pad4(pad)
    n, c, in_h, in_w = input.shape
    kernel_h, kernel_w = kernel.shape
    out = input.reshape(n * c, in_h, 1, in_w, 1)
    out = F.pad(out, [0, up - 1, 0, 0, 0, up - 1])
    out = out.view(n * c, in_h * up, in_w * up)
    out = F.pad(out, [max(pad_x0, 0), max(pad_x1, 0), max(pad_y0, 0), max(pad_y1, 0)])
    out = out[
        :,
        max(-pad_y0, 0) : out.shape[1] - max(-pad_y1, 0),
        max(-pad_x0, 0) : out.shape[2] - max(-pad_x1, 0),
    ]
    out = out.unsqueeze(1)
    w = torch.flip(kernel, [0, 1]).view(1, 1, kernel_h, kernel_w).to(out)
    out = F.conv2d(out, w)
    out = out[:, :, ::down, ::down]
    return out.reshape(n, c, out.shape[2], out.shape[3])


def _fir1d(
    x: Tensor, taps: Sequence[float], dim: int, up: int, down: int, pad0: int, pad1: int
) -> Tensor:
    """Along `dim`: zero-insert by `up`, pad, convolve with `taps`, keep every `down`-th sample.

    Computed without the zeros. Output j reads z[j*down + t] * taps[K-1-t] from the
    zero-inserted, padded signal z; with up > 1 only taps where (j + t - pad0) is divisible
    by `up` see a sample, so output phase p = j mod up is a plain filter of x with those taps
    at offset (p + t - pad0) / up. Each phase is a sum of scaled, shifted views written
    straight into its interleaved slots of the output.
    """
    n = x.shape[dim]
    k = len(taps)
    flipped = list(reversed(taps))
    full = n * up + pad0 + pad1 - k + 1  # output length before downsampling
    if full <= 0:
        raise ValueError(
            f"upfirdn2d: output would be empty (input {n}, kernel {k}, pad {pad0},{pad1})"
        )
    if up > 1 and down > 1:
        return _fir1d(x, taps, dim, up, 1, pad0, pad1).narrow(dim, 0, full)[
            _stride_index(x.ndim, dim, down)
        ]
    if up == 1:
        return _fir1d_direct(x, flipped, dim, down, pad0, (full - 1) // down + 1)
    q_len = -(-full // up)  # every phase is computed to this length; the tail is trimmed
    shape = list(x.shape)
    shape[dim] = q_len * up
    out = x.new_empty(shape)
    slots = out.unflatten(dim, (q_len, up))
    for p in range(up):
        slot = slots.select(dim + 1, p)
        terms = [(flipped[t], (p + t - pad0) // up) for t in range(k) if (p + t - pad0) % up == 0]
        if not terms:
            slot.zero_()
            continue
        lo = min(o for _, o in terms)
        hi = max(o for _, o in terms) + q_len - 1
        left, right = max(0, -lo), max(0, hi - (n - 1))
        xp = F.pad(x, [0, 0] * (x.ndim - 1 - dim) + [left, right]) if left or right else x
        for i, (weight, offset) in enumerate(terms):
            piece = xp.narrow(dim, offset + left, q_len)
            if i == 0:
                torch.mul(piece, weight, out=slot)
            else:
                slot.add_(piece, alpha=weight)
    return out.narrow(dim, 0, full) if full != q_len * up else out


def _fir1d_direct(
    x: Tensor, flipped: Sequence[float], dim: int, down: int, pad0: int, out_len: int
) -> Tensor:
    """`_fir1d` without up-sampling: output j = sum_t x[j*down + t - pad0] * flipped[t], x
    being zero outside [0, n). Each tap adds its slice of x into the range of outputs it
    reaches, so no padded copy of x is made (a fill and a copy of the whole tensor each
    time); a tap that reaches every output initialises the result."""
    n = x.shape[dim]
    spans = []  # (weight, first output, end output, first input sample)
    for t, weight in enumerate(flipped):
        lo = max(0, -((t - pad0) // down))  # ceil((pad0 - t) / down), at least 0
        hi = min(out_len, (n - 1 + pad0 - t) // down + 1)
        if hi > lo:
            spans.append((weight, lo, hi, lo * down + t - pad0))
    shape = list(x.shape)
    shape[dim] = out_len
    out = x.new_empty(shape)
    whole = [i for i, (_, lo, hi, _) in enumerate(spans) if lo == 0 and hi == out_len]
    if whole:
        spans.insert(0, spans.pop(whole[0]))
    else:
        out.zero_()
    for i, (weight, lo, hi, start) in enumerate(spans):
        piece = x.narrow(dim, start, (hi - lo - 1) * down + 1)
        if down > 1:
            piece = piece[_stride_index(x.ndim, dim, down)]
        if i == 0 and whole:
            torch.mul(piece, weight, out=out)
        else:
            out.narrow(dim, lo, hi - lo).add_(piece, alpha=weight)
    return out


def _stride_index(ndim: int, dim: int, step: int) -> tuple:
    return (slice(None),) * dim + (slice(None, None, step),)


def _upfirdn2d_separable(
    x: Tensor, ky, kx, up: int, down: int, pad: tuple[int, int, int, int]
) -> Tensor:
    px0, px1, py0, py1 = pad
    out = _fir1d(x, ky, dim=2, up=up, down=down, pad0=py0, pad1=py1)
    return _fir1d(out, kx, dim=3, up=up, down=down, pad0=px0, pad1=px1)


class _UpFirDn2dSeparable(torch.autograd.Function):
    """Separable upfirdn2d whose backward is again an upfirdn2d (the adjoint), as in NVIDIA's
    implementation: autograd through the per-tap slices would allocate and zero a full-size
    gradient for every tap."""

    @staticmethod
    def forward(
        ctx, x: Tensor, ky, kx, up: int, down: int, pad: tuple[int, int, int, int]
    ) -> Tensor:
        out = _upfirdn2d_separable(x, ky, kx, up, down, pad)
        ctx.args = (ky, kx, up, down, pad, x.shape[2], x.shape[3], out.shape[2], out.shape[3])
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        ky, kx, up, down, pad, in_h, in_w, out_h, out_w = ctx.args
        px0, px1, py0, py1 = pad
        kh, kw = len(ky), len(kx)
        grad_pad = (
            kw - px0 - 1,
            in_w * up - out_w * down + px0 - up + 1,
            kh - py0 - 1,
            in_h * up - out_h * down + py0 - up + 1,
        )
        grad = _UpFirDn2dSeparable.apply(
            grad_out, tuple(reversed(ky)), tuple(reversed(kx)), down, up, grad_pad
        )
        return grad, None, None, None, None, None


def upfirdn2d(
    input: Tensor,
    kernel: Tensor,
    up: int = 1,
    down: int = 1,
    pad: Sequence[int] = (0, 0),
    separable: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Tensor:
    """Same contract as `upfirdn2d_reference`; fast when the kernel is separable.

    `separable=(ky, kx)` passes the kernel's 1-D factors (modules compute them once with
    `separable_factors`); without them the reference runs.
    """
    if separable is None:
        return upfirdn2d_reference(input, kernel, up=up, down=down, pad=pad)
    ky, kx = (tuple(float(t) for t in taps) for taps in separable)
    return _UpFirDn2dSeparable.apply(input, ky, kx, up, down, _pad4(pad))


def fused_leaky_relu_reference(
    input: Tensor, bias: Tensor | None, negative_slope: float = 0.2, scale: float = math.sqrt(2)
) -> Tensor:
    """leaky_relu(input + bias) * scale, with `bias` broadcast over dim 1."""
    if bias is not None:
        input = input + bias.view(1, -1, *([1] * (input.ndim - 2)))
    return F.leaky_relu(input, negative_slope) * scale


class _FusedLeakyReLU(torch.autograd.Function):
    """Bias + leaky ReLU + gain that saves only its output for backward.

    The sign of the output equals the sign of the pre-activation (scale > 0), so the output
    alone determines the local slope.
    """

    @staticmethod
    def forward(
        ctx, input: Tensor, bias: Tensor | None, negative_slope: float, scale: float
    ) -> Tensor:
        if bias is not None:
            out = input + bias.view(1, -1, *([1] * (input.ndim - 2))).to(input.dtype)
        else:
            out = input.clone()
        F.leaky_relu_(out, negative_slope)
        out.mul_(scale)
        ctx.save_for_backward(out)
        ctx.negative_slope = negative_slope
        ctx.scale = scale
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: Tensor):
        (out,) = ctx.saved_tensors
        grad_input = _leaky_relu_grad(grad_output, out, ctx.negative_slope)
        grad_input.mul_(ctx.scale)
        grad_bias = None
        if ctx.has_bias and ctx.needs_input_grad[1]:
            dims = [0, *range(2, grad_input.ndim)]
            grad_bias = grad_input.sum(dims).to(ctx.bias_dtype)
        return grad_input, grad_bias, None, None


def _leaky_relu_grad(grad_output: Tensor, out: Tensor, negative_slope: float) -> Tensor:
    """grad where out > 0, grad * negative_slope elsewhere, in one pass (out: the activation's
    output, or anything with the pre-activation's sign)."""
    return torch.ops.aten.leaky_relu_backward(grad_output, out, negative_slope, True)


def fused_leaky_relu(
    input: Tensor, bias: Tensor | None, negative_slope: float = 0.2, scale: float = math.sqrt(2)
) -> Tensor:
    """Same contract as `fused_leaky_relu_reference`, with half the saved activations."""
    return _FusedLeakyReLU.apply(input, bias, negative_slope, scale)


def demod_noise_act_reference(
    input: Tensor,
    dcoefs: Tensor,
    noise_weight: Tensor,
    noise: Tensor,
    bias: Tensor | None,
    negative_slope: float = 0.2,
    scale: float = math.sqrt(2),
) -> Tensor:
    """The tail of a synthesis layer: demodulate ([N, C] per-channel scale), add weighted noise
    ([N or 1, 1, H, W]), then bias + leaky ReLU + gain."""
    out = input * dcoefs.view(*dcoefs.shape, 1, 1) + noise_weight * noise
    return fused_leaky_relu_reference(out, bias, negative_slope, scale)


class _DemodNoiseAct(torch.autograd.Function):
    """`demod_noise_act_reference` in one output allocation and three passes over it, saving
    the input and the output.

    Autograd over the separate ops allocates a tensor per op in both passes; this is the
    element-wise bulk of every synthesis layer. The gain (scale > 0) is folded into the small
    factors (leaky ReLU is positively homogeneous: lrelu(z) * scale == lrelu(z * scale)), so
    the forward is one multiply-add, one broadcast add of the noise and the activation in
    place. Parameter gradients are reductions that need no full-size temporary (a batched dot
    product for the demodulation, channel sums for the noise weight and the bias).
    """

    @staticmethod
    def forward(ctx, input, dcoefs, noise_weight, noise, bias, negative_slope, scale):
        dtype = input.dtype
        n, c = dcoefs.shape
        gain = dcoefs.view(n, c, 1, 1).to(dtype) * scale  # [N, C, 1, 1]
        if bias is not None:
            out = torch.addcmul(bias.view(1, -1, 1, 1).to(dtype) * scale, input, gain)
        else:
            out = input * gain
        out.add_(noise.to(dtype) * (noise_weight.to(dtype) * scale))  # [N or 1, 1, H, W]
        F.leaky_relu_(out, negative_slope)
        ctx.save_for_backward(input, dcoefs, noise_weight, noise, out)
        ctx.negative_slope, ctx.scale = negative_slope, scale
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        input, dcoefs, noise_weight, noise, out = ctx.saved_tensors
        scale = ctx.scale
        # d(loss)/d(scale * pre-activation): the gain goes into the small factors below
        grad = _leaky_relu_grad(grad_output, out, ctx.negative_slope)
        need = ctx.needs_input_grad
        n, c = dcoefs.shape
        grad_dcoefs = None
        if need[1]:
            grad_dcoefs = (channel_dot(grad, input) * scale).to(dcoefs.dtype)
        grad_noise_weight = grad_noise = None
        if need[2] or need[3]:
            per_pixel = grad.sum(1, keepdim=True)  # [N, 1, H, W]
            if need[2]:
                grad_noise_weight = (
                    ((per_pixel * noise).sum() * scale).reshape(1).to(noise_weight.dtype)
                )
            if need[3]:
                grad_noise = per_pixel * (noise_weight.to(grad.dtype) * scale)
                if noise.shape[0] == 1:
                    grad_noise = grad_noise.sum(0, keepdim=True)
                grad_noise = grad_noise.to(noise.dtype)
        grad_bias = None
        if ctx.has_bias and need[4]:
            grad_bias = (grad.sum([0, 2, 3]) * scale).to(ctx.bias_dtype)
        grad_input = None
        if need[0]:  # last: the reductions above read grad before it is scaled in place
            grad_input = grad.mul_(dcoefs.view(n, c, 1, 1).to(grad.dtype) * scale)
        return grad_input, grad_dcoefs, grad_noise_weight, grad_noise, grad_bias, None, None


def channel_dot(a: Tensor, b: Tensor) -> Tensor:
    """sum over H, W of a * b for every (sample, channel): [N, C, H, W] x2 -> [N, C], as one
    batched matrix product (no full-size temporary; on a CPU twice as fast as mul + sum)."""
    n, c = a.shape[:2]
    return torch.bmm(a.reshape(n * c, 1, -1), b.reshape(n * c, -1, 1)).view(n, c)


def demod_noise_act(
    input: Tensor,
    dcoefs: Tensor,
    noise_weight: Tensor,
    noise: Tensor,
    bias: Tensor | None,
    negative_slope: float = 0.2,
    scale: float = math.sqrt(2),
) -> Tensor:
    """Same contract as `demod_noise_act_reference`, fused."""
    return _DemodNoiseAct.apply(input, dcoefs, noise_weight, noise, bias, negative_slope, scale)


def scaled_conv2d_reference(
    input: Tensor,  # [N, C_in, H, W]
    scales: Tensor,  # [N, C_in, 1, 1]: the per-sample style of each input channel
    weight: Tensor,  # [C_out, C_in, k, k]
    padding: int = 0,
    transposed: bool = False,  # a stride-2 transposed convolution (2x up-sampling)
) -> Tensor:
    """conv2d(input * scales, weight): a modulated convolution with the style applied to the
    activations (StyleGAN2-ADA's training form), before any demodulation."""
    x = input * scales
    if transposed:
        return F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    return F.conv2d(x, weight, padding=padding)


class _ScaledConv2d(torch.autograd.Function):
    """`scaled_conv2d_reference` that keeps the unscaled input for backward instead of the
    scaled one: the input is already held (it is the previous layer's output), so a layer
    holds one activation-sized tensor less; the scaled input is recomputed (the same multiply,
    the same values) only when the weight needs a gradient. The scales' gradient is a batched
    dot product instead of a full-size product and a sum."""

    @staticmethod
    def forward(ctx, input, scales, weight, padding, transposed):
        out = scaled_conv2d_reference(input, scales, weight, padding, transposed)
        ctx.save_for_backward(input, scales, weight)
        ctx.padding, ctx.transposed = padding, transposed
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        input, scales, weight = ctx.saved_tensors
        need_input, need_scales, need_weight = ctx.needs_input_grad[:3]
        # only the shape of the convolution's input is read unless the weight needs a gradient
        x = input * scales if need_weight else input
        if ctx.transposed:
            stride, padding, conv_weight = (2, 2), (0, 0), weight.transpose(0, 1)
        else:
            stride, padding, conv_weight = (1, 1), (ctx.padding, ctx.padding), weight
        grad_x, grad_weight, _ = torch.ops.aten.convolution_backward(
            grad_output, x, conv_weight, None, stride, padding, (1, 1), ctx.transposed,
            (0, 0), 1, [need_input or need_scales, need_weight, False],
        )  # fmt: skip
        grad_scales = None
        if need_scales:
            grad_scales = channel_dot(grad_x, input).view(scales.shape).to(scales.dtype)
        grad_input = grad_x.mul_(scales) if need_input else None  # grad_x is ours to reuse
        if grad_weight is not None and ctx.transposed:
            grad_weight = grad_weight.transpose(0, 1)
        return grad_input, grad_scales, grad_weight, None, None


def scaled_conv2d(
    input: Tensor, scales: Tensor, weight: Tensor, padding: int = 0, transposed: bool = False
) -> Tensor:
    """Same contract as `scaled_conv2d_reference`, holding less for backward."""
    return _ScaledConv2d.apply(input, scales, weight, padding, transposed)
