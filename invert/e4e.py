"""e4e: the encoder that inverts an aligned face photo into a generator's W+ in one pass.

Tov et al., "Designing an Encoder for StyleGAN Image Manipulation" (2021),
omertov/encoder4editing. An IR-SE-50 ResNet (the ArcFace backbone) with a feature pyramid
over three of its stages predicts one base latent `w0` from the coarsest features and, for
every further style, an offset from it: the codes stay near one W, which is what keeps
them editable. The published checkpoint predicts offsets from the generator's mean latent,
so W+ = `encoder(x) + latent_avg`.

Module names, registration order and shapes are e4e's, so `state_dict()` is interchangeable
with its checkpoints (tests/data/reference/e4e_state_dict_manifest.tsv). Only the inference
stage is implemented (all deltas on); e4e's progressive training stages are not needed.

    >>> e4e = load_e4e("e4e-ffhq")  # invert/e4e_weights.py: a registry name or a path
    >>> w_plus = e4e.encode(preprocess(PIL.Image.open("face.png")))  # [1, 18, 512]
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import PIL.Image
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylegan2.model import EqualLinear

log = logging.getLogger(__name__)

INPUT_SIZE = 256  # e4e is trained on 256x256 crops
STYLE_DIM = 512  # width of w
COARSE_IND = 3  # styles [0, 3) read the 16x16 features, [3, 7) the 32x32, [7, n) the 64x64
MIDDLE_IND = 7
_STAGE_CHANNELS = (64, 128, 256, 512)
STAGE_UNITS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
_MODES = ("ir", "ir_se")


class EncoderError(ValueError):
    """A file that is not a usable e4e encoder; the message names the file and the fault."""


def n_styles_for(stylegan_size: int) -> int:
    """How many W+ entries a generator of `stylegan_size` pixels takes (18 at 1024)."""
    if stylegan_size < 8 or stylegan_size & (stylegan_size - 1):
        raise ValueError(f"stylegan_size must be a power of two >= 8 (got {stylegan_size})")
    return int(math.log2(stylegan_size)) * 2 - 2


# -- the network --------------------------------------------------------------------------


class SEModule(nn.Module):
    """Squeeze-and-excitation: rescale channels by a gate computed from their means."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc2(F.relu(self.fc1(self.avg_pool(x))))  # [N, C, 1, 1]
        return x * torch.sigmoid(gate)


class BottleneckIR(nn.Module):
    """One unit of the IR(-SE) ResNet: pre-activation residual, stride on the second conv."""

    def __init__(
        self,
        in_channels: int,
        depth: int,  # output channels
        stride: int,  # 2 in the first unit of a stage, else 1
        se: bool,  # append a squeeze-and-excitation gate ('ir_se')
    ):
        super().__init__()
        self.shortcut_layer: nn.Module
        if in_channels == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)  # a strided identity
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)
            )
        layers: list[nn.Module] = [
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
        ]
        if se:
            layers.append(SEModule(depth, 16))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.res_layer(x) + self.shortcut_layer(x)
        return out


class GradualStyleBlock(nn.Module):
    """Stride-2 convs down to 1x1, then an EqualLinear: one feature map -> one w."""

    def __init__(self, in_c: int, out_c: int, spatial: int):  # spatial: input height
        super().__init__()
        self.out_c = out_c
        convs: list[nn.Module] = [nn.Conv2d(in_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(int(math.log2(spatial)) - 1):
            convs += [nn.Conv2d(out_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*convs)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.convs(x)  # [N, out_c, 1, 1] for an input of `spatial` pixels
        w: Tensor = self.linear(x.reshape(x.shape[0], self.out_c))  # [N, out_c]
        return w


def _upsample_add(x: Tensor, y: Tensor) -> Tensor:
    """FPN top-down step: `x` bilinearly resized to `y`'s size (align_corners as e4e), + y."""
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


class Encoder4Editing(nn.Module):
    """e4e's encoder: image [N, 3, 256, 256] in [-1, 1] -> W+ offsets [N, n_styles, 512]."""

    def __init__(
        self,
        num_layers: int = 50,  # backbone depth: 50 (every published e4e), 100 or 152
        mode: str = "ir_se",  # 'ir_se' (with squeeze-and-excitation, e4e's) or 'ir'
        stylegan_size: int = 1024,  # output size of the generator the codes are for
    ):
        super().__init__()
        if num_layers not in STAGE_UNITS:
            raise ValueError(f"num_layers must be 50, 100 or 152 (got {num_layers})")
        if mode not in _MODES:
            raise ValueError(f"mode must be 'ir' or 'ir_se' (got {mode!r})")
        self.num_layers, self.mode, self.stylegan_size = num_layers, mode, stylegan_size
        self.n_styles = n_styles_for(stylegan_size)
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64)
        )
        units: list[nn.Module] = []
        in_channels = 64
        for depth, count in zip(_STAGE_CHANNELS, STAGE_UNITS[num_layers], strict=True):
            for i in range(count):
                units.append(BottleneckIR(in_channels, depth, 2 if i == 0 else 1, mode == "ir_se"))
                in_channels = depth
        self.body = nn.Sequential(*units)
        # The pyramid reads the last unit of stages 2, 3 and 4 (units 6, 20, 23 at depth 50,
        # the indices e4e hard-codes; deeper backbones would break e4e's own code).
        ends = [sum(STAGE_UNITS[num_layers][: s + 1]) - 1 for s in range(4)]
        self._taps = (ends[1], ends[2], ends[3])
        self.styles = nn.ModuleList(
            GradualStyleBlock(512, 512, 16 if i < COARSE_IND else 32 if i < MIDDLE_IND else 64)
            for i in range(self.n_styles)
        )
        self.latlayer1 = nn.Conv2d(256, 512, 1)
        self.latlayer2 = nn.Conv2d(128, 512, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"Encoder4Editing takes [N, 3, 256, 256] (got {list(x.shape)})")
        x = self.input_layer(x)
        feats: dict[int, Tensor] = {}
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self._taps:
                feats[i] = x
        c1, c2, c3 = (feats[i] for i in self._taps)  # [N,128,64,64] [N,256,32,32] [N,512,16,16]

        w0 = self.styles[0](c3)  # [N, 512]: the base w every style starts from
        codes = [w0]
        features = p2 = c3
        for i in range(1, self.n_styles):
            if i == COARSE_IND:
                features = p2 = _upsample_add(c3, self.latlayer1(c2))  # [N, 512, 32, 32]
            elif i == MIDDLE_IND:
                features = _upsample_add(p2, self.latlayer2(c1))  # [N, 512, 64, 64]
            codes.append(w0 + self.styles[i](features))
        return torch.stack(codes, dim=1)  # [N, n_styles, 512]


# -- a loaded encoder ---------------------------------------------------------------------


@dataclass
class E4E:
    """A loaded encoder ready to invert photos."""

    encoder: Encoder4Editing  # eval(), frozen (set here)
    latent_avg: Tensor  # [n_styles, 512], on the encoder's device (a [512] one is expanded)
    source: str  # what was loaded: a registry name, a path, or 'random'

    def __post_init__(self) -> None:
        self.encoder.eval().requires_grad_(False)
        n = self.encoder.n_styles
        avg = self.latent_avg.detach()
        if tuple(avg.shape) == (STYLE_DIM,):
            avg = avg.expand(n, STYLE_DIM)
        if tuple(avg.shape) != (n, STYLE_DIM):
            raise EncoderError(
                f"{self.source}: latent_avg must be [{n}, {STYLE_DIM}] or [{STYLE_DIM}] "
                f"(got {list(avg.shape)})"
            )
        device = next(self.encoder.parameters()).device
        self.latent_avg = avg.to(device=device, dtype=torch.float32).clone()

    @property
    def n_styles(self) -> int:
        return self.encoder.n_styles

    def encode(self, images: Tensor) -> Tensor:
        """Images [N, 3, H, W] in [-1, 1] -> w_plus [N, n_styles, 512] on the encoder's device
        (sizes other than 256 go through `resize_for_encoder`)."""
        x = resize_for_encoder(images.to(device=self.latent_avg.device, dtype=torch.float32))
        with torch.no_grad():
            w_plus: Tensor = self.encoder(x) + self.latent_avg  # [N, n_styles, 512]
        return w_plus


def resize_for_encoder(images: Tensor) -> Tensor:
    """[N, 3, H, W] -> [N, 3, 256, 256]: bilinear, antialiased when shrinking.

    e4e's own transform shrinks with PIL's bilinear filter, which widens its kernel by the
    scale; `antialias=True` is the tensor equivalent (within one 8-bit step of `preprocess`),
    where plain bilinear would alias a 1024-px photo badly. 256-px input is returned as is.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N, 3, H, W] in [-1, 1] (got {list(images.shape)})")
    if tuple(images.shape[-2:]) == (INPUT_SIZE, INPUT_SIZE):
        return images
    size = (INPUT_SIZE, INPUT_SIZE)
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def preprocess(image: PIL.Image.Image) -> Tensor:
    """e4e's test transform: RGB, PIL bilinear resize to 256x256, [0, 1], then (x - 0.5) / 0.5.

    The same operations as torchvision's Resize((256, 256)), ToTensor, Normalize(0.5, 0.5)
    (bit for bit), without importing torchvision. Returns [1, 3, 256, 256] float32 in [-1, 1].
    """
    rgb = image.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), PIL.Image.Resampling.BILINEAR)
    pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    x = pixels.view(INPUT_SIZE, INPUT_SIZE, 3).permute(2, 0, 1).float().div(255)  # [3, H, W]
    return x.sub(0.5).div(0.5).unsqueeze(0)
