"""Auxiliary model files the photo pipeline needs: the e4e encoder, the face detector and
landmark network, the perceptual-loss backbone.

The same contract as the generator registry (stylegan2/registry.py): each file has a name,
a cache file name, a direct URL where one exists (else a note on how to get it by hand), a
published sha256 where there is one (else trust on first use, recorded next to the file).
`resolve(name)` downloads once (resumable, checksummed, with a progress bar) and verifies
on every use; `NADA_WEIGHTS_<NAME>` (upper case, '-' -> '_') points at a local file
instead, for machines with no network. Torch-free, so the API can list what exists.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from nada.rundir import publish
from stylegan2.download import (
    ChecksumError,
    DownloadError,
    download,
    file_lock,
    record_sha256,
    recorded_sha256,
    sha256_file,
    verify_file,
)
from stylegan2.registry import cache_dir


class UnknownWeightsError(ValueError):
    """A model file name that is not registered; the message lists the known names."""


@dataclass(frozen=True)
class WeightFile:
    name: str  # registry key, e.g. 'e4e-ffhq'
    filename: str  # file name inside <cache>/weights/
    description: str  # one line for `nada models list` and the docs
    url: str | None = None  # direct download; None: placed by hand (see `manual`)
    sha256: str | None = None  # published hex digest; None: trust on first use
    size_mb: float | None = None  # approximate download size, for messages
    source: str = ""  # who made it, under what license
    manual: str | None = None  # how to get it by hand (required when url is None)

    def __post_init__(self) -> None:
        if self.url is None and not self.manual:
            raise ValueError(f"{self.name}: an entry without url needs a `manual` note")
        if not self.filename or Path(self.filename).name != self.filename:
            raise ValueError(f"{self.name}: filename must be a bare file name")


_E4E_SOURCE = (
    "Tov et al., 'Designing an Encoder for StyleGAN Image Manipulation' (e4e), "
    "omertov/encoder4editing, MIT license; trained on FFHQ (encoder for ffhq-1024)"
)

# face-alignment's own URLs (face_alignment/detection/sfd/sfd_detector.py and
# face_alignment/api.py, version 1.5). The 10 hex digits in each file name follow
# torch.hub's convention (a prefix of the file's sha256), which face-alignment itself does
# not check; no full digest is published, so the cache trusts the first copy and
# invert.landmarks warns when the prefix disagrees.
_FAN_BASE_URL = "https://www.adrianbulat.com/downloads/python-fan/"
_FACE_ALIGNMENT_SOURCE = (
    "Adrian Bulat, 1adrianb/face-alignment (PyPI face-alignment), BSD-3-Clause license"
)
_MANUAL = (
    "It is face-alignment's own download: fetch {url} on a machine with network access "
    "and register it with `nada weights add {name} PATH`."
)

S3FD = WeightFile(
    name="face-s3fd",
    filename="s3fd-619a316812.pth",
    description="S3FD face detector (face-alignment), finds faces in a photo",
    url=_FAN_BASE_URL + "s3fd-619a316812.pth",
    size_mb=86.0,
    source=_FACE_ALIGNMENT_SOURCE
    + "; S3FD: Zhang et al., 'S3FD: Single Shot Scale-invariant Face Detector'",
    manual=_MANUAL.format(url=_FAN_BASE_URL + "s3fd-619a316812.pth", name="face-s3fd"),
)
FAN_2D = WeightFile(
    name="face-fan2d",
    filename="2DFAN4-11f355bf06.pth.tar",
    description="2DFAN-4 landmark network (face-alignment), 68 iBUG points for FFHQ alignment",
    url=_FAN_BASE_URL + "2DFAN4-11f355bf06.pth.tar",
    size_mb=96.0,
    source=_FACE_ALIGNMENT_SOURCE
    + "; FAN: Bulat & Tzimiropoulos, 'How far are we from solving the 2D & 3D Face Alignment problem?'",
    manual=_MANUAL.format(url=_FAN_BASE_URL + "2DFAN4-11f355bf06.pth.tar", name="face-fan2d"),
)

VGG16 = WeightFile(
    name="vgg16-torchvision",
    filename="vgg16-397923af.pth",
    description="torchvision's ImageNet VGG16: the backbone of the LPIPS perceptual loss",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    sha256=None,  # torchvision publishes only the first 8 hex digits, in the file name
    size_mb=528.0,
    source=(
        "Simonyan & Zisserman, VGG16 (CC BY 4.0); weights trained by torchvision "
        "(BSD-3-Clause); used by LPIPS (richzhang/PerceptualSimilarity, BSD-2-Clause)"
    ),
    manual=(
        "Download https://download.pytorch.org/models/vgg16-397923af.pth on a machine "
        "with network access (torchvision's file name carries the first 8 hex digits of "
        "its sha256: check that `sha256sum` starts with 397923af) and register it with "
        "`nada weights add vgg16-torchvision PATH`."
    ),
)

E4E_FFHQ = WeightFile(
    name="e4e-ffhq",
    filename="e4e_ffhq_encode.pt",
    description="e4e encoder (IR-SE-50) inverting FFHQ-aligned faces into ffhq-1024's W+",
    url=(
        "https://huggingface.co/AIRI-Institute/HairFastGAN/resolve/main/"
        "pretrained_models/encoder4editing/e4e_ffhq_encode.pt"
    ),
    size_mb=1200.0,
    source=_E4E_SOURCE + "; mirrored by AIRI-Institute/HairFastGAN on Hugging Face",
    manual=(
        "The authors publish it on Google Drive (omertov/encoder4editing's README, "
        "'e4e_ffhq_encode.pt'); download it there and register it with "
        "`nada weights add e4e-ffhq PATH`."
    ),
)

_BUILTIN = (E4E_FFHQ, S3FD, FAN_2D, VGG16)
_WEIGHTS: dict[str, WeightFile] = {w.name: w for w in _BUILTIN}


def add_weights(entry: WeightFile, *, overwrite: bool = False) -> None:
    """Register a model file for this process (modules that need one register it here)."""
    if entry.name in _WEIGHTS and not overwrite and _WEIGHTS[entry.name] != entry:
        raise ValueError(f"model file {entry.name!r} is already registered")
    _WEIGHTS[entry.name] = entry


def list_weights() -> list[WeightFile]:
    return [dataclasses.replace(w) for w in _WEIGHTS.values()]


def get_weights_info(name: str) -> WeightFile:
    entry = _WEIGHTS.get(name)
    if entry is None:
        raise UnknownWeightsError(f"unknown model file {name!r}; known: {', '.join(_WEIGHTS)}")
    return dataclasses.replace(entry)


def env_var(name: str) -> str:
    """'e4e-ffhq' -> 'NADA_WEIGHTS_E4E_FFHQ': the variable that points at a local copy."""
    return "NADA_WEIGHTS_" + name.upper().replace("-", "_").replace(".", "_")


def cache_path(name: str) -> Path:
    return cache_dir() / "weights" / get_weights_info(name).filename


def local_path(name: str) -> Path | None:
    """The file for `name` if it is on this machine (the env override, else the cache)."""
    override = os.environ.get(env_var(name))
    if override:
        return Path(override).expanduser()
    path = cache_path(name)
    return path if path.is_file() else None


def _missing(entry: WeightFile, path: Path, why: str = "") -> DownloadError:
    hint = (
        f"{entry.manual + ' ' if entry.manual else ''}Or copy the file to {path}, or set "
        f"{env_var(entry.name)}=PATH."
    )
    return DownloadError(f"model file {entry.name!r} ({entry.description}) is {why}. {hint}")


def resolve(name: str, *, progress: bool | None = None, download_missing: bool = True) -> Path:
    """The verified local file for `name`, downloading it into the cache if needed.

    Raises:
        UnknownWeightsError: not registered.
        DownloadError: not on this machine and cannot be fetched (offline, no URL); the
            message says where to place the file by hand.
        ChecksumError: the file does not match its published or recorded sha256.
    """
    entry = get_weights_info(name)
    override = os.environ.get(env_var(name))
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{env_var(name)} points at {path}, which is not a file")
        if entry.sha256 and sha256_file(path) != entry.sha256:
            raise ChecksumError(
                f"{path} ({env_var(name)}) is not {name}: its sha256 differs from the published one",
                expected=entry.sha256,
                got=sha256_file(path),
            )
        return path
    path = cache_path(name)
    if not path.is_file():
        if entry.url is None or not download_missing:
            raise _missing(entry, path, "not on this machine")
        by_hand = f"copy it to {path} or set {env_var(name)}=PATH" + (
            f". {entry.manual}" if entry.manual else ""
        )
        digest = download(
            entry.url, path, sha256=entry.sha256, name=name, progress=progress, by_hand=by_hand
        )
        if entry.sha256 is None and recorded_sha256(path) is None:
            record_sha256(path, digest)
    verify_file(
        path,
        entry.sha256,
        name=name,
        fix=f"Delete it (and its .sha256) and run again to download it, or set {env_var(name)}.",
    )
    return path


def install_file(name: str, source: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Copy a local file into the cache as `name` (`nada weights add`)."""
    entry = get_weights_info(name)
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"no such file: {source}")
    digest = sha256_file(source)
    if entry.sha256 and digest != entry.sha256:
        raise ChecksumError(
            f"{source} has sha256 {digest}, not the published sha256 of {name}",
            expected=entry.sha256,
            got=digest,
        )
    path = cache_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock")):
        if path.is_file() and not overwrite and sha256_file(path) != digest:
            raise FileExistsError(f"{name} is already cached at {path} with other contents")
        publish(source, path, copy=True)
        record_sha256(path, digest)
    return path


# The encoder that inverts photos into each registered generator's W+, where one exists.
# Generators without one (AFHQ, churches, uploads) start refinement from the mean latent.
ENCODER_FOR_GENERATOR: dict[str, str] = {"ffhq-1024": "e4e-ffhq"}


def encoder_for(generator: str) -> str | None:
    return ENCODER_FOR_GENERATOR.get(generator)
