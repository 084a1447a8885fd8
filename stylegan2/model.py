"""StyleGAN2 generator (Karras et al., 2020) in the layout of rosinality/stylegan2-pytorch.

Module names, parameter names, shapes and registration order are those of the widely used
PyTorch port, so `state_dict()` is interchangeable with every public checkpoint built on it
(FFHQ/AFHQ/LSUN, StyleGAN-NADA, e4e, StyleCLIP). `forward()` has the same signature and
semantics. What differs is how the work is done (see `ops.py` and `ModulatedConv2d`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylegan2.ops import (
    assert_shape,
    demod_noise_act,
    fused_leaky_relu,
    fused_leaky_relu_reference,
    make_kernel,
    scaled_conv2d,
    scaled_conv2d_reference,
    separable_factors,
    upfirdn2d,
)

DEFAULT_BLUR = (1, 3, 3, 1)


class PixelNorm(nn.Module):
    def forward(self, input: Tensor) -> Tensor:
        return input * torch.rsqrt(torch.mean(input**2, dim=1, keepdim=True) + 1e-8)


class _FIRFilter(nn.Module):
    """Holds a 2-D FIR kernel buffer (part of the state dict) and its cached 1-D factors.

    The factors are recomputed whenever a state dict is loaded, so a checkpoint with a
    different (even non-separable) kernel is still honoured.
    """

    kernel: Tensor

    def _set_kernel(self, kernel: Tensor) -> None:
        self.register_buffer("kernel", kernel)
        self._refresh_factors()

    def _refresh_factors(self) -> None:
        self._factors = separable_factors(self.kernel)
        self._separable = None if getattr(self, "reference_ops", False) else self._factors

    def _load_from_state_dict(self, *args, **kwargs):  # noqa: ANN002, ANN003
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh_factors()


class Upsample(_FIRFilter):
    """2x upsampling with a FIR filter (used on the RGB skip path)."""

    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self._set_kernel(make_kernel(kernel) * (factor**2))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, input: Tensor) -> Tensor:
        return upfirdn2d(
            input, self.kernel, up=self.factor, pad=self.pad, separable=self._separable
        )


class Blur(_FIRFilter):
    """FIR low-pass filter applied after a transposed (upsampling) convolution."""

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * (upsample_factor**2)
        self._set_kernel(k)
        self.pad = pad

    def forward(self, input: Tensor) -> Tensor:
        return upfirdn2d(input, self.kernel, pad=self.pad, separable=self._separable)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: weights stored at N(0,1)/lr_mul, scaled at run time."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,  # initial bias value (1 for style modulations)
        lr_mul: float = 1.0,  # learning-rate multiplier (0.01 in the mapping network)
        activation: str | None = None,  # None or 'fused_lrelu'
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init)) if bias else None
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul
        self.reference_ops = False

    def forward(self, input: Tensor) -> Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            out = F.linear(input, self.weight * self.scale)
            act = fused_leaky_relu_reference if self.reference_ops else fused_leaky_relu
            return act(out, bias)
        return F.linear(input, self.weight * self.scale, bias=bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}"


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample by a style (and demodulated).

    The port this layout comes from folds the style into per-sample weights and runs one
    grouped convolution. We scale the activations instead (x * s, shared weights, then the
    demodulation as a per-sample output scale), as NVIDIA's StyleGAN2-ADA does in training:
    mathematically the same layer, but a plain batched convolution whose backward pass is
    much cheaper than a grouped one on both CPU and GPU. `grouped=True` selects the grouped
    form (kept as a cross-check in the tests).
    """

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,  # 2x transposed convolution followed by a blur
        downsample: bool = False,  # not used by the generator; kept for layout parity
        blur_kernel: Sequence[float] = DEFAULT_BLUR,
        grouped: bool = False,  # grouped per-sample weights (the port's form, slower)
    ):
        super().__init__()
        if downsample:
            raise NotImplementedError("downsampling modulated convs are not used by the generator")
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        self.downsample = downsample
        self.grouped = grouped
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            pad0 = (p + 1) // 2 + factor - 1
            pad1 = p // 2 + 1
            self.blur = Blur(blur_kernel, pad=(pad0, pad1), upsample_factor=factor)
        fan_in = in_channel * kernel_size**2
        self.scale = 1 / math.sqrt(fan_in)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channel, in_channel, kernel_size, kernel_size)
        )
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate
        self.reference_ops = False  # scaled_conv2d_reference instead of scaled_conv2d

    def extra_repr(self) -> str:
        return (
            f"{self.in_channel}, {self.out_channel}, {self.kernel_size}, "
            f"upsample={self.upsample}, demodulate={self.demodulate}"
        )

    def forward(self, input: Tensor, style: Tensor) -> Tensor:
        if self.grouped:
            return self._forward_grouped(input, self.modulation(style), self.weight[0] * self.scale)
        out, dcoefs = self.forward_undemodulated(input, style)
        if dcoefs is not None:
            out = out * dcoefs.view(*dcoefs.shape, 1, 1).to(out.dtype)
        return out

    def forward_undemodulated(self, input: Tensor, style: Tensor) -> tuple[Tensor, Tensor | None]:
        """The convolution of the style-scaled input, and the demodulation coefficients
        [N, out] (None without demodulation) still to be applied per output channel; callers
        that apply them fused with later element-wise work use this."""
        batch = input.shape[0]
        styles = self.modulation(style)  # [N, in]
        weight = self.weight[0] * self.scale  # [out, in, k, k]
        dcoefs = None
        if self.demodulate:
            # sum over (in, k, k) of (w * s)^2 == s^2 @ sum_kk(w^2)^T
            dcoefs = torch.rsqrt(
                styles.square() @ weight.square().sum([2, 3]).t() + self.eps
            )  # [N, out]
        scales = styles.view(batch, -1, 1, 1).to(input.dtype)
        conv = scaled_conv2d_reference if self.reference_ops else scaled_conv2d
        out = conv(input, scales, weight.to(input.dtype), self.padding, self.upsample)
        if self.upsample:
            out = self.blur(out)  # a per-channel scale commutes with the blur
        return out, dcoefs

    def _forward_grouped(self, input: Tensor, styles: Tensor, weight: Tensor) -> Tensor:
        batch, in_channel, height, width = input.shape
        k = self.kernel_size
        weight = weight.unsqueeze(0) * styles.view(batch, 1, in_channel, 1, 1)  # [N, out, in, k, k]
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + self.eps)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        input = input.reshape(1, batch * in_channel, height, width)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(batch * in_channel, self.out_channel, k, k)
            out = F.conv_transpose2d(
                input, weight.to(input.dtype), padding=0, stride=2, groups=batch
            )
            out = out.view(batch, self.out_channel, out.shape[2], out.shape[3])
            return self.blur(out)
        weight = weight.reshape(batch * self.out_channel, in_channel, k, k)
        out = F.conv2d(input, weight.to(input.dtype), padding=self.padding, groups=batch)
        return out.view(batch, self.out_channel, height, width)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image: Tensor, noise: Tensor | None = None) -> Tensor:
        if noise is None:
            batch, _, height, width = image.shape
            noise = image.new_empty(batch, 1, height, width).normal_()
        return image + self.weight.to(image.dtype) * noise.to(image.dtype)


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, input: Tensor) -> Tensor:
        return self.input.expand(input.shape[0], -1, -1, -1)


class FusedLeakyReLU(nn.Module):
    def __init__(
        self, channel: int, bias: bool = True, negative_slope: float = 0.2, scale: float = 2**0.5
    ):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel)) if bias else None
        self.negative_slope = negative_slope
        self.scale = scale
        self.reference_ops = False

    def forward(self, input: Tensor) -> Tensor:
        act = fused_leaky_relu_reference if self.reference_ops else fused_leaky_relu
        return act(input, self.bias, self.negative_slope, self.scale)


class StyledConv(nn.Module):
    """Modulated 3x3 conv + per-pixel noise + bias/leaky ReLU: one synthesis layer."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[float] = DEFAULT_BLUR,
        demodulate: bool = True,
        conv_clamp: float | None = None,  # clamp the activations to +-this; None: no clamp
    ):
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channel, out_channel, kernel_size, style_dim,
            upsample=upsample, blur_kernel=blur_kernel, demodulate=demodulate,
        )  # fmt: skip
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)
        self.conv_clamp = conv_clamp

    def forward(self, input: Tensor, style: Tensor, noise: Tensor | None = None) -> Tensor:
        if self.conv.grouped or self.activate.reference_ops or not self.conv.demodulate:
            out = self.conv(input, style)
            out = self.noise(out, noise=noise)
            return _clamp(self.activate(out), self.conv_clamp)
        # Demodulation, noise, bias and activation in one pass (see ops.demod_noise_act).
        out, dcoefs = self.conv.forward_undemodulated(input, style)
        if noise is None:
            noise = out.new_empty(out.shape[0], 1, out.shape[2], out.shape[3]).normal_()
        act = self.activate
        assert dcoefs is not None  # demodulate is on
        out = demod_noise_act(
            out, dcoefs, self.noise.weight, noise, act.bias, act.negative_slope, act.scale
        )
        return _clamp(out, self.conv_clamp)


def _clamp(x: Tensor, limit: float | None) -> Tensor:
    """NVIDIA's `conv_clamp`: activations clamped to [-limit, limit] after the gain (what
    keeps their fp16 layers finite; their generators are trained with it)."""
    return x if limit is None else x.clamp(-limit, limit)


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation), added to the upsampled skip image."""

    def __init__(
        self,
        in_channel: int,
        style_dim: int,
        upsample: bool = True,
        blur_kernel: Sequence[float] = DEFAULT_BLUR,
        conv_clamp: float | None = None,  # clamp the RGB (before the skip sum); None: no clamp
    ):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.conv_clamp = conv_clamp

    def forward(self, input: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(input, style)
        out = _clamp(out + self.bias.to(out.dtype), self.conv_clamp)
        if skip is not None:
            out = out + self.upsample(skip)
        return out


def channels_for(channel_multiplier: int) -> dict[int, int]:
    """Feature maps per resolution (config-f for channel_multiplier=2)."""
    cm = channel_multiplier
    return {
        4: 512,
        8: 512,
        16: 512,
        32: 512,
        64: 256 * cm,
        128: 128 * cm,
        256: 64 * cm,
        512: 32 * cm,
        1024: 16 * cm,
    }


def _channel_table(channels: Mapping[int, int], size: int) -> tuple[tuple[int, int], ...]:
    """((4, c4), (8, c8), ..., (size, c)): every resolution, each a positive width."""
    wanted = [2**i for i in range(2, int(math.log2(size)) + 1)]
    missing = [r for r in wanted if r not in channels]
    if missing or any(int(channels[r]) < 1 for r in wanted):
        raise ValueError(
            f"channels must give a positive width for each of {wanted} (got {dict(channels)})"
        )
    return tuple((r, int(channels[r])) for r in wanted)


class Generator(nn.Module):
    """StyleGAN2 generator: mapping network z -> w, synthesis network W+ -> image in ~[-1, 1]."""

    def __init__(
        self,
        size: int,  # output resolution in pixels, a power of two >= 8
        style_dim: int = 512,  # dimension of z and w
        n_mlp: int = 8,  # layers in the mapping network
        channel_multiplier: int = 2,  # 2 = config-f (FFHQ), 1 = config-e
        blur_kernel: Sequence[float] = DEFAULT_BLUR,  # FIR taps of up-sampling
        lr_mlp: float = 0.01,  # learning-rate multiplier of the mapping network
        # Feature maps per resolution (4, 8, ..., size), e.g. NVIDIA's
        # min(channel_base // res, channel_max); None: rosinality's table for
        # channel_multiplier (channels_for).
        channels: Mapping[int, int] | None = None,
        conv_clamp: float | None = None,  # NVIDIA's conv_clamp (256 in ADA); None: no clamp
        z_dim: int | None = None,  # width of z (the mapping's input); None: style_dim
    ):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"size must be a power of two >= 8 (got {size})")
        self.size = size
        self.style_dim = style_dim
        self.n_mlp = n_mlp
        self.channel_multiplier = channel_multiplier
        self.z_dim = z_dim or style_dim
        self.conv_clamp = conv_clamp
        # the table as passed (None for rosinality's): what a checkpoint records
        self.channel_table = _channel_table(channels, size) if channels is not None else None

        layers: list[nn.Module] = [PixelNorm()]
        for i in range(n_mlp):
            layers.append(
                EqualLinear(
                    self.z_dim if i == 0 else style_dim, style_dim, lr_mul=lr_mlp,
                    activation="fused_lrelu",
                )
            )  # fmt: skip
        self.style = nn.Sequential(*layers)

        self.channels = (
            dict(self.channel_table) if self.channel_table else channels_for(channel_multiplier)
        )
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(
            self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel,
            conv_clamp=conv_clamp,
        )  # fmt: skip
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False, conv_clamp=conv_clamp)

        self.log_size = int(math.log(size, 2))
        self.num_layers = (self.log_size - 2) * 2 + 1

        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # empty; kept so module paths match the original
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()

        in_channel = self.channels[4]
        for layer_idx in range(self.num_layers):
            res = (layer_idx + 5) // 2
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, 2**res, 2**res))
        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2**i]
            self.convs.append(
                StyledConv(
                    in_channel, out_channel, 3, style_dim, upsample=True,
                    blur_kernel=blur_kernel, conv_clamp=conv_clamp,
                )
            )  # fmt: skip
            self.convs.append(
                StyledConv(
                    out_channel, out_channel, 3, style_dim, blur_kernel=blur_kernel,
                    conv_clamp=conv_clamp,
                )
            )  # fmt: skip
            self.to_rgbs.append(ToRGB(out_channel, style_dim, conv_clamp=conv_clamp))
            in_channel = out_channel

        self.n_latent = self.log_size * 2 - 2

    def set_reference_ops(self, enabled: bool = True) -> Generator:
        """Run the plain reference ops (grouped conv, zero-insertion FIR, unfused activation).

        This is how the straightforward port computes; the benchmark and the tests use it as
        the baseline the fast path is measured and checked against.
        """
        for module in self.modules():
            if isinstance(module, ModulatedConv2d):
                module.grouped = enabled
            if isinstance(module, EqualLinear | FusedLeakyReLU | _FIRFilter | ModulatedConv2d):
                module.reference_ops = enabled
            if isinstance(module, _FIRFilter):
                module._refresh_factors()
        return self

    def make_noise(self) -> list[Tensor]:
        device = self.input.input.device
        noises = [torch.randn(1, 1, 4, 4, device=device)]
        for i in range(3, self.log_size + 1):
            for _ in range(2):
                noises.append(torch.randn(1, 1, 2**i, 2**i, device=device))
        return noises

    @torch.no_grad()
    def mean_latent(self, n_latent: int) -> Tensor:
        """Mean w of `n_latent` random z: the truncation centre. [1, style_dim]"""
        latent_in = torch.randn(n_latent, self.z_dim, device=self.input.input.device)
        return self.style(latent_in).mean(0, keepdim=True)

    def get_latent(self, input: Tensor) -> Tensor:
        return self.style(input)

    def forward(
        self,
        styles: Sequence[
            Tensor
        ],  # one or two [N, style_dim] (z or w), or one W+ [N, n_latent, style_dim]
        return_latents: bool = False,
        inject_index: int
        | None = None,  # W+ index where the second style takes over (random if None)
        truncation: float = 1,  # psi; 1 disables truncation
        truncation_latent: Tensor | None = None,  # w to truncate towards (mean_latent)
        input_is_latent: bool = False,  # styles are w (or W+), not z
        noise: Sequence[Tensor | None] | None = None,  # per-layer noise, num_layers entries
        randomize_noise: bool = True,  # fresh noise each call; False uses the noise buffers
    ) -> tuple[Tensor, Tensor | None]:
        if not input_is_latent:
            styles = [self.style(s) for s in styles]

        if noise is None:
            if randomize_noise:
                noise = [None] * self.num_layers
            else:
                noise = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

        if truncation < 1:
            if truncation_latent is None:
                raise TypeError("truncation < 1 needs truncation_latent (the mean w)")
            styles = [
                truncation_latent + truncation * (style - truncation_latent) for style in styles
            ]

        if len(styles) < 2:
            inject_index = self.n_latent
            latent = (
                styles[0].unsqueeze(1).repeat(1, inject_index, 1)
                if styles[0].ndim < 3
                else styles[0]
            )
        else:
            if inject_index is None:
                inject_index = random.randint(1, self.n_latent - 1)
            latent = styles[0].unsqueeze(1).repeat(1, inject_index, 1)
            latent2 = styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)
            latent = torch.cat([latent, latent2], 1)
        # The synthesis network's input contract (NVIDIA's SynthesisNetwork checks the same):
        # a W+ of another generator's layer count is refused, not silently cut or misindexed.
        assert_shape(latent, [None, self.n_latent, self.style_dim])  # [N, n_latent, style_dim]

        out = self.input(latent)
        out = self.conv1(out, latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])

        i = 1
        for conv1, conv2, noise1, noise2, to_rgb in zip(
            self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2], self.to_rgbs, strict=False
        ):
            out = conv1(out, latent[:, i], noise=noise1)
            out = conv2(out, latent[:, i + 1], noise=noise2)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2

        image = skip
        return (image, latent) if return_latents else (image, None)
