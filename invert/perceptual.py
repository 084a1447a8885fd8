"""The refinement's perceptual loss: LPIPS (Zhang et al., 2018) on VGG16 features, through
the maintained `lpips` package.

The package ships its small linear heads in the wheel but fetches the VGG16 backbone from
torchvision's download URL at construction. Here the backbone is built with random weights
(`pnet_rand=True`: nothing is fetched) and torchvision's VGG16 file is then loaded into it
from `invert.weights` ('vgg16-torchvision'): cached, checksummed, placeable by hand. Without
the file (offline, not placed) `load_perceptual` warns once and returns None, and the
refinement runs on the pixel loss alone.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invert.weights import VGG16, resolve
from stylegan2.download import ChecksumError, DownloadError

log = logging.getLogger(__name__)

VGG16_WEIGHTS = VGG16.name
LPIPS_MAX_SIZE = 256  # images larger than this are averaged down first (as projectors do)


class PerceptualLoss(nn.Module):
    """LPIPS-VGG distance between images [N, 3, H, W] in [-1, 1] -> [N]; frozen."""

    def __init__(
        self,
        lpips_model: nn.Module,  # an lpips.LPIPS(net='vgg') with its backbone loaded
        max_size: int = LPIPS_MAX_SIZE,  # average larger images down to this many pixels
    ):
        super().__init__()
        self.lpips = lpips_model.eval().requires_grad_(False)
        self.max_size = max_size

    def _shrink(self, images: Tensor) -> Tensor:
        if images.shape[-1] <= self.max_size:
            return images
        return F.interpolate(images, size=(self.max_size, self.max_size), mode="area")

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        distance: Tensor = self.lpips(self._shrink(x), self._shrink(y))  # [N, 1, 1, 1]
        return distance.reshape(-1)


def load_perceptual(
    device: torch.device | str = "cpu", *, download_missing: bool = True
) -> PerceptualLoss | None:
    """LPIPS-VGG on `device`, or None (with one warning) when the VGG16 file is unavailable.

    Args:
        device: where the loss runs.
        download_missing: fetch the VGG16 file (528 MB) into the cache if it is not there.

    Raises:
        ValueError: the file is there but is not torchvision's VGG16.
        stylegan2.download.ChecksumError: the file differs from the one recorded on first use.
    """
    try:
        path = resolve(VGG16_WEIGHTS, download_missing=download_missing)
    except ChecksumError:
        raise
    except (DownloadError, FileNotFoundError) as exc:  # offline, not placed, bad env path
        log.warning(
            "the perceptual loss is unavailable; refinement uses the pixel loss only. %s", exc
        )
        return None
    features = read_vgg16_features(path)  # a wrong file fails before the network is built
    import lpips  # the package imports scipy and friends: only when the loss is wanted

    with warnings.catch_warnings():
        # torchvision's deprecation notice for lpips's `pretrained=` argument.
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
    load_vgg16_features(model.net, features, path)
    return PerceptualLoss(model).to(device)


def read_vgg16_features(path: Path) -> dict[str, Tensor]:
    """torchvision's VGG16 file -> its `features.*` tensors, keyed without the prefix."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load reports damage in many ways
        raise ValueError(f"{path} is not torchvision's VGG16 (unreadable: {exc})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a VGG16 state dict (it holds a {type(state).__name__})")
    features = {
        k.removeprefix("features."): v
        for k, v in state.items()
        if isinstance(k, str) and k.startswith("features.") and isinstance(v, Tensor)
    }
    if not features:
        raise ValueError(f"{path} is not torchvision's VGG16: it has no features.* weights")
    return features


def load_vgg16_features(backbone: nn.Module, features: dict[str, Tensor], path: Path) -> None:
    """Copy VGG16 `features` into lpips's sliced backbone, whose modules keep torchvision's
    indices (`slice3.10` is `features.10`)."""
    wanted: dict[str, Tensor] = {}
    for slice_name, block in backbone.named_children():
        for index, module in block.named_children():
            for param, _ in module.named_parameters(recurse=False):
                key = f"{index}.{param}"
                if key not in features:
                    raise ValueError(f"{path} is not torchvision's VGG16: it has no features.{key}")
                wanted[f"{slice_name}.{key}"] = features[key]
    try:
        backbone.load_state_dict(wanted, strict=True)
    except RuntimeError as exc:  # shapes of another network
        raise ValueError(f"{path} is not torchvision's VGG16: {exc}") from None
