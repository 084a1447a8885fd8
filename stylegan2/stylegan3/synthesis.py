"""StyleGAN3's synthesis network: Fourier features, then modulated convolutions through
filtered leaky ReLUs, then ToRGB (Karras et al., 2021).

Module, parameter and buffer names are NVIDIA's (`input`, `L{i}_{size}_{channels}`,
`affine`, `magnitude_ema`, `up_filter`, `down_filter`, ...), so `state_dict()` equals their
`G.synthesis.state_dict()`. Each layer computes either with the reference ops (NVIDIA's
operations one by one) or with the fast ones (`ops.py`); `set_reference_ops` picks.

W+ use: the input reads ws[:, 0]; layer L{i} reads ws[:, i + 1]; ToRGB is the last layer
(L{num_layers}, ws[:, num_layers + 1]).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from stylegan2.ops import assert_shape
from stylegan2.stylegan3.filters import design_lowpass_filter
from stylegan2.stylegan3.fir import LayerFilters
from stylegan2.stylegan3.layout import InputSpec, LayerSpec
from stylegan2.stylegan3.mapping import FullyConnectedLayer
from stylegan2.stylegan3.ops import (
    filtered_lrelu,
    filtered_lrelu_reference,
    modulated_conv2d,
    modulated_conv2d_reference,
)


class SynthesisInput(nn.Module):
    """Fourier features [N, C, size, size]: sinusoids of fixed frequencies and phases,
    rotated and translated per sample by an affine map of w, then mixed by a learned matrix.

    `transform` is a user-set inverse transform of the image (identity as trained): a 3x3
    matrix in image units, applied after the learned rotation and translation.
    """

    transform: Tensor
    freqs: Tensor
    phases: Tensor

    def __init__(self, w_dim: int, spec: InputSpec):
        super().__init__()
        self.w_dim = w_dim
        self.channels = spec.channels
        self.size = spec.size
        self.sampling_rate = spec.sampling_rate
        self.bandwidth = spec.bandwidth
        # Random frequencies in a disc of radius `bandwidth` (NVIDIA's init; the file's
        # buffers replace them).
        freqs = torch.randn(self.channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= self.bandwidth
        phases = torch.rand(self.channels) - 0.5
        self.weight = nn.Parameter(torch.randn(self.channels, self.channels))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)  # [C, 2] cycles per image unit, (x, y)
        self.register_buffer("phases", phases)  # [C] in cycles

    def forward(self, w: Tensor) -> Tensor:  # [N, w_dim] -> [N, C, size, size]
        n = w.shape[0]
        # The learned similarity: rotation (r_c, r_s), normalised, and translation (t_x, t_y).
        t = self.affine(w)  # [N, 4]
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device, dtype=w.dtype)
        m_r = eye.repeat(n, 1, 1)  # inverse rotation of the image
        m_r[:, 0, 0], m_r[:, 0, 1] = t[:, 0], -t[:, 1]
        m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 1], t[:, 0]
        m_t = eye.repeat(n, 1, 1)  # inverse translation of the image
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)  # [N, 3, 3]

        # Move the sinusoids instead of the grid: phase shift, then rotated frequencies.
        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = freqs @ transforms[:, :2, :2]  # [N, C, 2]
        # Fade out frequencies the user transform pushed beyond the band.
        amplitudes = (
            1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)
        ).clamp(0, 1)  # [N, C]

        # Pixel centres in image units: (j + 0.5 - size / 2) / sampling_rate, the grid of
        # affine_grid(align_corners=False) scaled by size / (2 * sampling_rate).
        coords = torch.arange(self.size, device=w.device, dtype=w.dtype) + 0.5 - self.size / 2
        coords = coords * (1 / self.sampling_rate)  # [size]
        x = (
            coords.view(1, 1, -1, 1) * freqs[:, :, 0].view(n, 1, 1, -1)  # x varies along W
            + coords.view(1, -1, 1, 1) * freqs[:, :, 1].view(n, 1, 1, -1)  # y along H
            + phases.view(n, 1, 1, -1)
        )  # [N, H, W, C]
        x = torch.sin(x * (2 * math.pi)) * amplitudes.view(n, 1, 1, -1)
        x = x @ (self.weight / math.sqrt(self.channels)).t()  # [N, H, W, C]
        return x.permute(0, 3, 1, 2)  # [N, C, H, W]

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, "
            f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"
        )


class SynthesisLayer(nn.Module):
    """Modulated conv -> bias -> up-sample -> leaky ReLU -> clamp -> down-sample.

    The input is scaled by 1 / sqrt(magnitude_ema) (the running mean square of the layer's
    input that training tracked), so every layer sees inputs of unit magnitude. The ToRGB
    layer is a 1x1 conv without demodulation (its styles scaled by 1 / sqrt(fan-in)), with
    a linear activation and no filters, still clamped.
    """

    magnitude_ema: Tensor
    up_filter: Tensor | None
    down_filter: Tensor | None

    def __init__(self, w_dim: int, spec: LayerSpec, conv_clamp: float | None):
        super().__init__()
        self.spec = spec
        self.w_dim = w_dim
        self.is_torgb = spec.is_torgb
        self.in_channels, self.out_channels = spec.in_channels, spec.out_channels
        self.conv_kernel = spec.conv_kernel
        self.up_factor, self.down_factor = spec.up_factor, spec.down_factor
        self.padding = spec.padding
        self.conv_clamp = conv_clamp
        self.gain = 1.0 if spec.is_torgb else math.sqrt(2)
        self.slope = 1.0 if spec.is_torgb else 0.2
        self.reference_ops = False

        k = spec.conv_kernel
        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(spec.out_channels, spec.in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(spec.out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.register_buffer(
            "up_filter",
            design_lowpass_filter(
                spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, spec.tmp_sampling_rate
            ),
        )
        self.register_buffer(
            "down_filter",
            design_lowpass_filter(
                spec.down_taps, spec.out_cutoff, spec.out_half_width * 2,
                spec.tmp_sampling_rate, radial=spec.down_radial,
            ),
        )  # fmt: skip
        self._filters: tuple[tuple[int, ...], LayerFilters] | None = None

    def prepared_filters(self) -> LayerFilters:
        """The fast path's FIR stages for this layer's sizes, built on first use and again
        whenever a filter buffer is replaced or changed (a loaded state dict)."""
        key = tuple(
            v for f in (self.up_filter, self.down_filter) if f is not None
            for v in (id(f), f._version)
        )  # fmt: skip
        if self._filters is None or self._filters[0] != key:
            s = self.spec
            filters = LayerFilters(
                self.up_filter, self.down_filter, s.up_factor, s.down_factor, s.padding,
                s.in_size + s.conv_kernel - 1,
            )  # fmt: skip
            self._filters = (key, filters)
        return self._filters[1]

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.spec
        assert_shape(x, [None, self.in_channels, s.in_size, s.in_size])  # [N, I, H, W]
        assert_shape(w, [x.shape[0], self.w_dim])
        input_gain = self.magnitude_ema.rsqrt()
        styles = self.affine(w)  # [N, I]
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel**2))
        demodulate = not self.is_torgb
        pad = self.conv_kernel - 1  # a 'full' convolution: the output grows by k - 1
        if self.reference_ops:
            x = modulated_conv2d_reference(x, self.weight, styles, demodulate, pad, input_gain)
            x = filtered_lrelu_reference(
                x, self.up_filter, self.down_filter, self.bias, self.up_factor,
                self.down_factor, self.padding, self.gain, self.slope, self.conv_clamp,
            )  # fmt: skip
        else:
            x, dcoefs = modulated_conv2d(x, self.weight, styles, demodulate, pad, input_gain)
            x = filtered_lrelu(
                x, self.prepared_filters(), self.bias, self.gain, self.slope,
                self.conv_clamp, scale=dcoefs,
            )  # fmt: skip
        assert_shape(x, [None, self.out_channels, s.out_size, s.out_size])
        return x

    def extra_repr(self) -> str:
        s = self.spec
        return (
            f"in={s.in_channels}x{s.in_size}, out={s.out_channels}x{s.out_size}, "
            f"rates={s.in_sampling_rate}->{s.tmp_sampling_rate}->{s.out_sampling_rate}, "
            f"cutoff={s.in_cutoff:g}->{s.out_cutoff:g}, torgb={s.is_torgb}"
        )


class SynthesisNetwork(nn.Module):
    """W+ [N, num_ws, w_dim] -> image [N, img_channels, res, res], roughly in [-1, 1]."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        input_spec: InputSpec,
        layers: tuple[LayerSpec, ...],
        conv_clamp: float | None = 256,
        output_scale: float = 0.25,
    ):
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_ws = len(layers) + 1
        self.output_scale = output_scale
        self.input = SynthesisInput(w_dim, input_spec)
        self.layer_names = [spec.name for spec in layers]
        for spec in layers:
            setattr(self, spec.name, SynthesisLayer(w_dim, spec, conv_clamp))

    def forward(self, ws: Tensor) -> Tensor:
        assert_shape(ws, [None, self.num_ws, self.w_dim])
        ws = ws.to(torch.float32)
        x = self.input(ws[:, 0])
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x, ws[:, i + 1])
        if self.output_scale != 1:
            x = x * self.output_scale
        assert_shape(x, [None, self.img_channels, self.img_resolution, self.img_resolution])
        return x

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, num_ws={self.num_ws}, resolution={self.img_resolution}, "
            f"layers={len(self.layer_names)}"
        )
