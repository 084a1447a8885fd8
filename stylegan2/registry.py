"""Named base generators: the generator table of the one model-file registry.

Plain data and the standard library only -- the API process imports this module to
validate and list generator names and must never import torch.

    >>> from stylegan2 import registry
    >>> [g.name for g in registry.list_generators()][:1]
    ['ffhq-1024']
    >>> path = registry.resolve("ffhq-1024")  # downloads once, verifies on every call

Every public NVIDIA generator is an entry with a direct URL: the StyleGAN2-ADA, StyleGAN2
(TensorFlow config-f and the StyleGAN3 release's) and StyleGAN3 T/R pickles. They are read
as data and converted once into our layout in the cache (stylegan2/converted.py, on the
torch side); `ffhq-1024`, the default, is a rosinality-layout .pt.

The cache path, checksums (published, else trust on first use), the environment override
`NADA_GENERATOR_<NAME>` and the rules of `nada models add` are those of every model file:
stylegan2/model_files.py, and docs/models.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    "CONVERTED_FOLDER",
    "FAMILIES",
    "FORMATS",
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
    "converted_path",
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


FAMILIES = ("stylegan2", "stylegan3")  # what load_generator builds (stylegan2/loaded.py)
FORMATS = ("rosinality-pt", "nvidia-pkl")  # what an entry's download is
CONVERTED_FOLDER = "converted"  # in the generators' cache folder: pickles in our layout


@dataclass(frozen=True, kw_only=True)
class GeneratorInfo(ModelFile):
    """One pretrained generator: a rosinality-layout .pt, or one of NVIDIA's .pkl files
    (read as data, then converted once into our layout in the cache: stylegan2/converted.py)."""

    kind: Kind = field(default="generator", init=False)
    size: int  # output resolution in pixels (images are size x size)
    domain: str  # what it draws, in a few words: 'human faces', 'churches'
    family: str = "stylegan2"  # one of FAMILIES
    format: str = "rosinality-pt"  # one of FORMATS: what the download is
    # (left, top, right, bottom) in pixels: the part of the image that holds the picture;
    # None: all of it. LSUN car draws 512x384 letterboxed in 512x512.
    content_box: tuple[int, int, int, int] | None = None
    channel_multiplier: int = 2  # rosinality's config-f; decides the channel widths >= 64 px
    style_dim: int = 512  # width of w (and of z)
    n_mlp: int | None = 8  # layers in the mapping network; None: not checked by `add`

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
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {FAMILIES} (got {self.family!r})")
        if self.format not in FORMATS:
            raise ValueError(f"{self.name}: format must be one of {FORMATS} (got {self.format!r})")
        if self.content_box is not None:
            box = tuple(self.content_box)
            left, top, right, bottom = box if len(box) == 4 else (0, 0, 0, 0)
            if not (
                all(type(v) is int for v in box)
                and 0 <= left < right <= self.size
                and 0 <= top < bottom <= self.size
            ):
                raise ValueError(
                    f"{self.name}: content_box must be (left, top, right, bottom) in pixels "
                    f"within 0..{self.size} (got {self.content_box!r})"
                )
            object.__setattr__(self, "content_box", box)

    @property
    def converted_filename(self) -> str:
        """The converted checkpoint's name in the cache's converted/ folder."""
        return Path(self.filename).stem + ".pt"


_NVIDIA_NC = "NVIDIA Source Code License-NC (non-commercial use only)"
_NC = "nvidia-nc"
_ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/{}.pkl"
_NGC2 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/{}"
_NGC3 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/{}"
_TF2 = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-{}-config-f.pkl"

# size_mb of a pickle: approximate, (2 x G + D) parameters and buffers x 4 bytes (the file
# holds G, D and G_ema in float32), rounded to 10 MB. G from the full-size manifests
# (tests/data/nvidia/*manifest*) or, where they have no such configuration, from our own
# builders; D from NVIDIA's discriminator layout. The 256-px files of the StyleGAN3 release
# are estimated with channel_base 16384 (the paper's 256-px capacity). docs/models.md.


def _nvidia(**fields: Any) -> GeneratorInfo:
    """An NVIDIA pickle entry: the license and trust-on-first-use fields they all share."""
    return GeneratorInfo(
        format="nvidia-pkl", sha256=None, license=_NVIDIA_NC, license_id=_NC, **fields
    )


def _ada(name: str, pkl: str, size: int, domain: str, what: str, size_mb: int) -> GeneratorInfo:
    """A file of NVlabs/stylegan2-ada-pytorch (a PyTorch pickle)."""
    return _nvidia(
        name=name,
        size=size,
        domain=domain,
        description=f"{what}, StyleGAN2-ADA",
        filename=f"stylegan2-ada-{pkl}.pkl",
        url=_ADA.format(pkl),
        size_mb=size_mb,
        source=f"Karras et al., StyleGAN2-ADA (NVIDIA), NVlabs/stylegan2-ada-pytorch. {_NVIDIA_NC}.",
    )


def _ngc2(name: str, file: str, size: int, domain: str, what: str, size_mb: int) -> GeneratorInfo:
    """A StyleGAN2 file of the StyleGAN3 release on NVIDIA NGC (a PyTorch pickle)."""
    return _nvidia(
        name=name,
        size=size,
        domain=domain,
        description=f"{what}, StyleGAN2 (StyleGAN3 release)",
        filename=file,
        url=_NGC2.format(file),
        n_mlp=None,  # that release's configurations differ in mapping depth
        size_mb=size_mb,
        source=f"Karras et al. (NVIDIA), the StyleGAN2 models of NVlabs/stylegan3. {_NVIDIA_NC}.",
    )


def _tf2(name: str, x: str, size: int, domain: str, what: str, **kw: Any) -> GeneratorInfo:
    """A config-f file of NVlabs/stylegan2 (a TensorFlow pickle, read without TensorFlow)."""
    return _nvidia(
        name=name,
        size=size,
        domain=domain,
        description=f"{what}, StyleGAN2 config-f",
        filename=f"stylegan2-{x}-config-f.pkl",
        url=_TF2.format(x),
        size_mb=360,
        source=f"Karras et al., StyleGAN2 (NVIDIA), NVlabs/stylegan2 (TensorFlow). {_NVIDIA_NC}.",
        **kw,
    )


_SG3_MB = {("t", 1024): 290, ("t", 512): 310, ("t", 256): 280,
           ("r", 1024): 240, ("r", 512): 250, ("r", 256): 220}  # fmt: skip


def _sg3(config: str, data: str, size: int, domain: str, what: str) -> GeneratorInfo:
    """A StyleGAN3 file (config T or R) of NVlabs/stylegan3 on NVIDIA NGC."""
    file = f"stylegan3-{config}-{data}-{size}x{size}.pkl"
    return _nvidia(
        name=f"sg3-{config}-{data}-{size}",
        size=size,
        domain=domain,
        description=f"{what}, StyleGAN3-{config.upper()}",
        filename=file,
        url=_NGC3.format(file),
        family="stylegan3",
        n_mlp=None,
        size_mb=_SG3_MB[config, size],
        source=f"Karras et al., StyleGAN3 (NVIDIA), NVlabs/stylegan3. {_NVIDIA_NC}.",
    )


_FACES = "human faces"
_FACES_U = "human faces (unaligned)"
_ART = "art portraits"
_ART_U = "art portraits (unaligned)"
_AFHQ = "animal faces"

_BUILTIN = (
    GeneratorInfo(
        name="ffhq-1024",
        size=1024,
        domain=_FACES,
        description="FFHQ faces, StyleGAN2 config-f (the model StyleGAN-NADA adapts by default)",
        filename="stylegan2-ffhq-config-f.pt",
        url=(
            "https://huggingface.co/akhaliq/OneshotCLIP-stylegan2-ffhq/resolve/main/"
            "stylegan2-ffhq-config-f.pt"
        ),
        sha256=None,  # none published next to the mirror: trust on first use
        # size_mb unknown: rosinality's converter writes g_ema (~130 MB) with or without
        # g and d, and the mirror lists no size
        license=_NVIDIA_NC,
        license_id=_NC,
        source=(
            "Karras et al., StyleGAN2 (NVIDIA), trained on FFHQ; converted by "
            "rosinality/stylegan2-pytorch; mirrored at huggingface.co/akhaliq/"
            f"OneshotCLIP-stylegan2-ffhq. Weights: {_NVIDIA_NC}."
        ),
    ),
    # StyleGAN2-ADA: the AFHQ networks StyleGAN-NADA's Dog -> Cat example converts.
    _ada("afhq-dog-512", "afhqdog", 512, "dog faces", "AFHQ dogs", 360),
    _ada("afhq-cat-512", "afhqcat", 512, "cat faces", "AFHQ cats", 360),
    _ada("afhq-wild-512", "afhqwild", 512, "wild animal faces", "AFHQ wildlife", 360),
    _ada("ffhq-ada-1024", "ffhq", 1024, _FACES, "FFHQ faces", 380),
    _ada("metfaces-1024", "metfaces", 1024, _ART, "MetFaces portraits", 380),
    _ada("brecahad-512", "brecahad", 512, "breast cancer tissue", "BreCaHAD histology", 360),
    # StyleGAN2 config-f (TensorFlow). Its FFHQ file is the network ffhq-1024 mirrors.
    _tf2("lsun-church-256", "church", 256, "churches", "LSUN church exteriors"),
    _tf2(
        "lsun-car-512",
        "car",
        512,
        "cars",
        "LSUN cars (512x384 content, letterboxed)",
        content_box=(0, 64, 512, 448),
    ),
    _tf2("lsun-cat-256", "cat", 256, "cats", "LSUN cats"),
    _tf2("lsun-horse-256", "horse", 256, "horses", "LSUN horses"),
    # The StyleGAN2 files of the StyleGAN3 release for data sets and sizes not above.
    _ngc2("ffhq-512", "stylegan2-ffhq-512x512.pkl", 512, _FACES, "FFHQ faces", 360),
    _ngc2("ffhq-256", "stylegan2-ffhq-256x256.pkl", 256, _FACES, "FFHQ faces", 300),
    _ngc2("ffhqu-1024", "stylegan2-ffhqu-1024x1024.pkl", 1024, _FACES_U, "FFHQ-U faces", 380),
    _ngc2("ffhqu-256", "stylegan2-ffhqu-256x256.pkl", 256, _FACES_U, "FFHQ-U faces", 300),
    _ngc2(
        "metfacesu-1024",
        "stylegan2-metfacesu-1024x1024.pkl",
        1024,
        _ART_U,
        "MetFaces-U portraits",
        380,
    ),
    _ngc2("afhqv2-512", "stylegan2-afhqv2-512x512.pkl", 512, _AFHQ, "AFHQv2 animals", 360),
    _ngc2(
        "celebahq-256",
        "stylegan2-celebahq-256x256.pkl",
        256,
        "celebrity faces",
        "CelebA-HQ faces",
        300,
    ),
    _ngc2("lsun-dog-256", "stylegan2-lsundog-256x256.pkl", 256, "dogs", "LSUN dogs", 300),
    # StyleGAN3, configs T (translation equivariant) and R (rotation too).
    *(
        _sg3(config, data, size, domain, what)
        for config in ("t", "r")
        for data, size, domain, what in (
            ("ffhq", 1024, _FACES, "FFHQ faces"),
            ("ffhqu", 1024, _FACES_U, "FFHQ-U faces"),
            ("ffhqu", 256, _FACES_U, "FFHQ-U faces"),
            ("metfaces", 1024, _ART, "MetFaces portraits"),
            ("metfacesu", 1024, _ART_U, "MetFaces-U portraits"),
            ("afhqv2", 512, _AFHQ, "AFHQv2 animals"),
        )
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


def converted_path(name: str) -> Path:
    """Where the cache keeps `name`'s pickle converted into our layout (whether or not it
    is there yet): <cache>/generators/converted/<file>.pt (stylegan2/converted.py)."""
    info = get_generator_info(name)
    return GENERATORS.cache_path(name).parent / CONVERTED_FOLDER / info.converted_filename


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
