"""Auxiliary model files the photo pipeline needs: the e4e encoder, the face detector and
landmark network, the perceptual-loss backbone.

The auxiliary table of the one model-file registry (stylegan2/model_files.py), the same
rules as the generators: each file has a name, a cache file name, a direct URL where one
exists (else a note on how to get it by hand), a published sha256 where there is one (else
trust on first use, recorded next to the file). `resolve(name)` downloads once
(resumable, checksummed, with a progress bar) and verifies on every use;
`NADA_WEIGHTS_<NAME>` (upper case, '-' -> '_') names a local file instead (machines with
no network) or a mirror's URL. Torch-free, so the API can list what exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stylegan2.model_files import Kind, ModelFile, ModelTable, UnknownWeightsError

__all__ = [
    "ALIGNMENT",
    "E4E_FFHQ",
    "ENCODER_FOR_GENERATOR",
    "FAN_2D",
    "INSTEAD",
    "S3FD",
    "VGG16",
    "WEIGHTS",
    "UnknownWeightsError",
    "WeightFile",
    "WHAT",
    "add_weights",
    "cache_path",
    "encoder_for",
    "env_var",
    "get_weights_info",
    "install_file",
    "list_weights",
    "local_path",
    "resolve",
]


@dataclass(frozen=True, kw_only=True)
class WeightFile(ModelFile):
    """One auxiliary model file (no fields beyond those every model file has)."""

    kind: Kind = field(default="auxiliary", init=False)


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
    license="BSD-3-Clause",
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
    license="BSD-3-Clause",
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
    license="BSD-3-Clause (torchvision's weights of VGG16, CC BY 4.0)",
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
    license="MIT",
    domain="human faces (FFHQ-aligned)",
    source=_E4E_SOURCE + "; mirrored by AIRI-Institute/HairFastGAN on Hugging Face",
    manual=(
        "The authors publish it on Google Drive (omertov/encoder4editing's README, "
        "'e4e_ffhq_encode.pt'); download it there and register it with "
        "`nada weights add e4e-ffhq PATH`."
    ),
)

WEIGHTS: ModelTable[WeightFile] = ModelTable("auxiliary", (E4E_FFHQ, S3FD, FAN_2D, VGG16))
"""The auxiliary files: one table of stylegan2.model_files, the rules of every model file."""

# The table's operations under the names the rest of the project calls.
list_weights = WEIGHTS.entries
get_weights_info = WEIGHTS.get
add_weights = WEIGHTS.add
env_var = WEIGHTS.env_var
cache_path = WEIGHTS.cache_path
local_path = WEIGHTS.local_path
resolve = WEIGHTS.resolve
install_file = WEIGHTS.install


# The files aligning a photo needs (invert.landmarks); without them only a photo that is an
# aligned crop already (align false, the page's *Already aligned*) can be used.
ALIGNMENT: tuple[str, ...] = (S3FD.name, FAN_2D.name)

# For a user of the page: what each file is, and what to do without it (worker/failures.py
# words a failed job's message with these, the API its refusals).
_ALIGN_INSTEAD = (
    "tick Already aligned (align false) for a photo that is an aligned face crop, or ask "
    "the operator to install the face detector"
)
WHAT: dict[str, str] = {
    S3FD.name: "the face detector",
    FAN_2D.name: "the face landmark network",
    E4E_FFHQ.name: "the e4e encoder",
    VGG16.name: "the perceptual loss's VGG16",
}
INSTEAD: dict[str, str] = {
    S3FD.name: _ALIGN_INSTEAD,
    FAN_2D.name: _ALIGN_INSTEAD,
    E4E_FFHQ.name: "set Encoder to none (the refinement then starts from the mean face), or "
    "ask the operator to install it",
    VGG16.name: "set Perceptual loss weight to 0, or ask the operator to install it",
}

# The encoder that inverts photos into each registered generator's W+, where one exists.
# Generators without one (AFHQ, churches, uploads) start refinement from the mean latent.
ENCODER_FOR_GENERATOR: dict[str, str] = {"ffhq-1024": "e4e-ffhq"}


def encoder_for(generator: str) -> str | None:
    return ENCODER_FOR_GENERATOR.get(generator)
