"""StyleGAN3's mapping network: z (and a class label) -> w, broadcast to W+, truncated.

Module and parameter names are NVIDIA's (`fc0`, `fc1`, `embed`, `w_avg`), so a state dict
read from one of their pickles loads as it is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylegan2.ops import assert_shape


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale each row to unit mean square (the pixel norm of z). [N, D]"""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """A linear layer with equalised learning rate (NVIDIA's FullyConnectedLayer).

    The weight is stored at N(0, 1) / lr_multiplier and scaled by lr_multiplier / sqrt(in)
    at run time, the bias stored / lr_multiplier and scaled by lr_multiplier.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "linear",  # 'linear' or 'lrelu' (slope 0.2, gain sqrt(2))
        lr_multiplier: float = 1.0,  # 0.01 in the mapping network
        weight_init: float = 1.0,  # initial standard deviation of the (run-time) weight
        bias_init: float | list[float] = 0.0,  # initial bias, a value or one per output
    ):
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"activation must be 'linear' or 'lrelu' (got {activation!r})")
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.weight = nn.Parameter(
            torch.randn(out_features, in_features) * (weight_init / lr_multiplier)
        )
        bias = torch.broadcast_to(torch.as_tensor(bias_init, dtype=torch.float32), [out_features])
        self.bias = nn.Parameter(bias / lr_multiplier)

    def forward(self, x: Tensor) -> Tensor:  # [N, in] -> [N, out]
        weight = self.weight.to(x.dtype) * self.weight_gain
        bias = self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear":
            return torch.addmm(bias.unsqueeze(0), x, weight.t())
        return F.leaky_relu(x @ weight.t() + bias, 0.2) * math.sqrt(2)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, activation={self.activation}"


class MappingNetwork(nn.Module):
    """z [N, z_dim] (and c [N, c_dim]) -> W+ [N, num_ws, w_dim], every entry the same w.

    Truncation moves w towards `w_avg`, the mean w that training tracked: the file's
    buffer, not an estimate.
    """

    w_avg: Tensor

    def __init__(
        self,
        z_dim: int,
        c_dim: int,  # 0: unconditional
        w_dim: int,
        num_ws: int,  # W+ entries to broadcast to
        num_layers: int = 2,
        lr_multiplier: float = 0.01,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.embed = FullyConnectedLayer(c_dim, w_dim) if c_dim > 0 else None
        features = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation="lrelu", lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: Tensor,  # [N, z_dim]
        truncation: float = 1.0,  # psi: 1 = none, 0 = w_avg
        c: Tensor | None = None,  # [N, c_dim] class labels (one-hot), conditional models only
        truncation_cutoff: int | None = None,  # truncate only the first this many W+ entries
    ) -> Tensor:
        assert_shape(z, [None, self.z_dim])
        x = normalize_2nd_moment(z.to(torch.float32))
        if self.embed is not None:
            if c is None:
                raise ValueError(
                    f"this generator is conditional (c_dim={self.c_dim}): pass c, "
                    f"a [N, {self.c_dim}] class label"
                )
            assert_shape(c, [z.shape[0], self.c_dim])
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # [N, num_ws, w_dim]
        if truncation != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            head = self.w_avg.lerp(ws[:, :cutoff], truncation)
            ws = torch.cat([head, ws[:, cutoff:]], dim=1)
        return ws

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"
