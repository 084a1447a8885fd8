"""Named base generators: the generator table of the one model-file registry.

Plain data and the standard library only -- the API process imports this module to
validate and list generator names and must never import torch.

    >>> from stylegan2 import registry
    >>> [g.name for g in registry.list_generators()][:1]
    ['ffhq-1024']
    >>> path = registry.resolve("ffhq-1024")  # downloads once, verifies on every call

The cache path, checksums (published, else trust on first use), the environment override
`NADA_GENERATOR_<NAME>` and the rules of `nada models add` are those of every model file:
stylegan2/model_files.py, and docs/models.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from stylegan2.model_files import (
    CACHE_ENV,
    Kind,
    ManualDownloadError,
    ModelFile,
    ModelTable,
    UnknownGeneratorError,
    cache_dir,
)

__all__ = [
    "CACHE_ENV",
    "GENERATORS",
    "RANDOM_PREFIX",
    "RANDOM_SIZES",
    "GeneratorInfo",
    "ManualDownloadError",
    "UnknownGeneratorError",
    "add_generator",
    "cache_dir",
    "cache_path",
    "cached_path",
    "check_source",
    "env_var",
    "generator_names",
    "get_generator_info",
    "install_file",
    "list_generators",
    "local_path",
    "parse_random_name",
    "resolve",
    "verify_cached",
]

RANDOM_PREFIX = "random-"
RANDOM_SIZES = tuple(2**k for k in range(3, 11))  # 8 .. 1024

_RANDOM_NAME = re.compile(r"random-(\d+)")


@dataclass(frozen=True, kw_only=True)
class GeneratorInfo(ModelFile):
    """One pretrained StyleGAN2 generator in rosinality/stylegan2-pytorch's .pt layout."""

    kind: Kind = field(default="generator", init=False)
    size: int  # output resolution in pixels (images are size x size)
    domain: str  # what it draws, in a few words: 'human faces', 'churches'
    family: str = "stylegan2"
    channel_multiplier: int = 2  # rosinality's config-f; decides the channel widths >= 64 px
    style_dim: int = 512  # width of z and w
    n_mlp: int = 8  # layers in the mapping network

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name.startswith(RANDOM_PREFIX):
            raise ValueError(
                f"generator name must not start with {RANDOM_PREFIX!r} (got {self.name!r}): "
                "random-<size> names a seeded random generator"
            )
        if self.size not in RANDOM_SIZES:
            raise ValueError(
                f"{self.name}: size must be a power of two in 8..1024 (got {self.size})"
            )


def _converted_note(name: str, source_pkl: str) -> str:
    return (
        "No direct download of a rosinality-layout .pt is published. Get the original "
        f"weights ({source_pkl}), convert them with convert_weight.py from "
        "rosinality/stylegan2-pytorch (StyleGAN-NADA ships the same script), then register the .pt with "
        f"`nada models add {name} PATH`."
    )


def _ada_note(name: str, pkl: str) -> str:
    """The exact steps for an AFHQ model: StyleGAN-NADA's own notebook converts NVIDIA's
    StyleGAN2-ADA TensorFlow pickle this way (it needs TensorFlow 1.x and the ADA code)."""
    url = _ADA_PKL.format(pkl)
    return (
        "No direct download of a rosinality-layout .pt is published. On a CUDA machine "
        "(the script builds rosinality's CUDA ops and checks its result on the GPU), in a "
        "Python 3.7 environment with tensorflow 1.15 and torch: "
        f"(1) `wget {url}`; "
        "(2) `git clone https://github.com/NVlabs/stylegan2-ada` (the TensorFlow code the "
        "pickle needs) and `git clone https://github.com/rinongal/StyleGAN-nada` (its "
        "convert_weight.py, rosinality's script); "
        "(3) `PYTHONPATH=StyleGAN-nada/ZSSGAN python StyleGAN-nada/convert_weight.py "
        f"--repo stylegan2-ada --gen {pkl}.pkl`, which writes {pkl}.pt next to the .pkl; "
        f"(4) `nada models add {name} PATH` with PATH that {pkl}.pt (checks it is a {name.rsplit('-', 1)[-1]}-px "
        "generator, copies it into the cache, records its sha256). docs/models.md has more."
    )


_NVIDIA_NC = "NVIDIA Source Code License-NC (non-commercial use only)"
# Original weights the manual entries are converted from (the sources StyleGAN-NADA's own
# notebook uses); these are not rosinality-layout .pt files.
_ADA_PKL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/{}.pkl"
_SG2_PKL = "NVIDIA's TensorFlow {} from NVlabs/stylegan2's pretrained networks"

_BUILTIN = (
    GeneratorInfo(
        name="ffhq-1024",
        size=1024,
        domain="human faces",
        description="FFHQ faces, StyleGAN2 config-f (the model StyleGAN-NADA adapts by default)",
        filename="stylegan2-ffhq-config-f.pt",
        url=(
            "https://huggingface.co/akhaliq/OneshotCLIP-stylegan2-ffhq/resolve/main/"
            "stylegan2-ffhq-config-f.pt"
        ),
        sha256=None,  # none published next to the mirror: trust on first use
        license=_NVIDIA_NC,
        source=(
            "Karras et al., StyleGAN2 (NVIDIA), trained on FFHQ; converted by "
            "rosinality/stylegan2-pytorch; mirrored at huggingface.co/akhaliq/"
            f"OneshotCLIP-stylegan2-ffhq. Weights: {_NVIDIA_NC}."
        ),
    ),
    GeneratorInfo(
        name="afhq-dog-512",
        size=512,
        domain="dogs",
        description="AFHQ dog faces, StyleGAN2-ADA",
        filename="stylegan2-afhqdog-512.pt",
        license=_NVIDIA_NC,
        source=f"Karras et al., StyleGAN2-ADA (NVIDIA), trained on AFHQ dog. {_NVIDIA_NC}.",
        manual=_ada_note("afhq-dog-512", "afhqdog"),
    ),
    GeneratorInfo(
        name="afhq-cat-512",
        size=512,
        domain="cats",
        description="AFHQ cat faces, StyleGAN2-ADA",
        filename="stylegan2-afhqcat-512.pt",
        license=_NVIDIA_NC,
        source=f"Karras et al., StyleGAN2-ADA (NVIDIA), trained on AFHQ cat. {_NVIDIA_NC}.",
        manual=_ada_note("afhq-cat-512", "afhqcat"),
    ),
    GeneratorInfo(
        name="lsun-church-256",
        size=256,
        domain="churches",
        description="LSUN church exteriors, StyleGAN2 config-f",
        filename="stylegan2-church-config-f.pt",
        license=_NVIDIA_NC,
        source=f"Karras et al., StyleGAN2 (NVIDIA), trained on LSUN church. {_NVIDIA_NC}.",
        manual=_converted_note("lsun-church-256", _SG2_PKL.format("stylegan2-church-config-f.pkl")),
    ),
    GeneratorInfo(
        name="lsun-car-512",
        size=512,
        domain="cars",
        description="LSUN cars, StyleGAN2 config-f (512x384 content, letterboxed)",
        filename="stylegan2-car-config-f.pt",
        license=_NVIDIA_NC,
        source=f"Karras et al., StyleGAN2 (NVIDIA), trained on LSUN car. {_NVIDIA_NC}.",
        manual=_converted_note("lsun-car-512", _SG2_PKL.format("stylegan2-car-config-f.pkl")),
    ),
)

GENERATORS: ModelTable[GeneratorInfo] = ModelTable("generator", _BUILTIN)
"""The base generators: one table of stylegan2.model_files, the rules of every model file."""

# The table's operations under the names the rest of the project calls.
list_generators = GENERATORS.entries
generator_names = GENERATORS.names
get_generator_info = GENERATORS.get
add_generator = GENERATORS.add
env_var = GENERATORS.env_var
cache_path = GENERATORS.cache_path
cached_path = GENERATORS.cached_path
local_path = GENERATORS.local_path
verify_cached = GENERATORS.verify_cached
resolve = GENERATORS.resolve
install_file = GENERATORS.install


def check_source(name_or_path: str) -> None:
    """Refuse, before loading anything, a generator the CLI cannot use: an unknown name or
    a path to no file. A registered name, random-<size> or an existing file passes.

    Raises:
        ValueError: says which (UnknownGeneratorError lists the known names).
    """
    if Path(name_or_path).is_file() or parse_random_name(name_or_path) is not None:
        return
    if Path(name_or_path).suffix or "/" in name_or_path:
        raise ValueError(f"no such file {name_or_path}")
    get_generator_info(name_or_path)


def parse_random_name(name: str) -> int | None:
    """'random-256' -> 256; None for names that are not 'random-<digits>'.

    One generator has one name: 'random-0032' (or other digits than ASCII) is refused,
    naming 'random-32', so two spellings never make two jobs, caches or files.

    Raises:
        ValueError: for 'random-<size>' with a size that is not a power of two in 8..1024,
            or spelled otherwise than 'random-<size>'.
    """
    match = _RANDOM_NAME.fullmatch(name)
    if match is None:
        return None
    size = int(match.group(1))
    if size not in RANDOM_SIZES:
        raise ValueError(f"random generator size must be a power of two in 8..1024 (got {name!r})")
    canonical = f"{RANDOM_PREFIX}{size}"
    if name != canonical:
        raise ValueError(f"write the random generator's name as {canonical!r} (got {name!r})")
    return size
