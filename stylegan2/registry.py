"""Named base generators: where each one comes from, and the local cache that holds them.

Plain data and the standard library only -- the API process imports this module to
validate and list generator names and must never import torch.

    >>> from stylegan2 import registry
    >>> [g.name for g in registry.list_generators()][:1]
    ['ffhq-1024']
    >>> path = registry.resolve("ffhq-1024")  # downloads once, verifies on every call

Checksums: an entry's `sha256` is filled in only where the publisher lists one. For the
others the first download (or the first hand-placed file) is trusted and its hash is
recorded next to it in `<file>.sha256`; every later use verifies the file against that
record ("trust on first use"). See docs/models.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
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

log = logging.getLogger(__name__)

CACHE_ENV = "NADA_CACHE_DIR"
RANDOM_PREFIX = "random-"
RANDOM_SIZES = tuple(2**k for k in range(3, 11))  # 8 .. 1024

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RANDOM_NAME = re.compile(r"random-(\d+)")


class UnknownGeneratorError(ValueError):
    """A generator name that is not in the registry; the message lists the known names."""


class ManualDownloadError(DownloadError):
    """A registered generator that has no download URL and is not in the cache yet."""


@dataclass(frozen=True)
class GeneratorInfo:
    """One pretrained StyleGAN2 generator in rosinality/stylegan2-pytorch's .pt layout."""

    name: str  # registry key, '<dataset>-<size>' in lower case, e.g. 'ffhq-1024'
    size: int  # output resolution in pixels (images are size x size)
    domain: str  # what it draws, in a few words: 'human faces', 'churches'
    description: str  # one line for `nada models list` and the docs
    filename: str  # file name inside the cache directory
    url: str | None = None  # direct download; None: the user places the file (see `manual`)
    sha256: str | None = None  # published hex digest; None: trust on first use
    source: str = ""  # who trained it, where the file is mirrored, and its license
    manual: str | None = None  # how to obtain the file by hand (required when url is None)
    channel_multiplier: int = 2  # rosinality's config-f; decides the channel widths >= 64 px
    style_dim: int = 512  # width of z and w
    n_mlp: int = 8  # layers in the mapping network

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name) or self.name.startswith(RANDOM_PREFIX):
            raise ValueError(
                f"generator name must be lower-case letters, digits, '.', '_' or '-' and must "
                f"not start with {RANDOM_PREFIX!r} (got {self.name!r})"
            )
        if self.size not in RANDOM_SIZES:
            raise ValueError(
                f"{self.name}: size must be a power of two in 8..1024 (got {self.size})"
            )
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(
                f"{self.name}: sha256 must be 64 lower-case hex digits (got {self.sha256!r})"
            )
        if not self.filename or Path(self.filename).name != self.filename:
            raise ValueError(f"{self.name}: filename must be a bare file name ({self.filename!r})")
        if self.url is not None and not self.url.startswith(("https://", "http://")):
            raise ValueError(f"{self.name}: url must be http(s) (got {self.url!r})")
        if self.url is None and not self.manual:
            raise ValueError(f"{self.name}: an entry without url needs a `manual` note")


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
        source=f"Karras et al., StyleGAN2-ADA (NVIDIA), trained on AFHQ dog. {_NVIDIA_NC}.",
        manual=_ada_note("afhq-dog-512", "afhqdog"),
    ),
    GeneratorInfo(
        name="afhq-cat-512",
        size=512,
        domain="cats",
        description="AFHQ cat faces, StyleGAN2-ADA",
        filename="stylegan2-afhqcat-512.pt",
        source=f"Karras et al., StyleGAN2-ADA (NVIDIA), trained on AFHQ cat. {_NVIDIA_NC}.",
        manual=_ada_note("afhq-cat-512", "afhqcat"),
    ),
    GeneratorInfo(
        name="lsun-church-256",
        size=256,
        domain="churches",
        description="LSUN church exteriors, StyleGAN2 config-f",
        filename="stylegan2-church-config-f.pt",
        source=f"Karras et al., StyleGAN2 (NVIDIA), trained on LSUN church. {_NVIDIA_NC}.",
        manual=_converted_note("lsun-church-256", _SG2_PKL.format("stylegan2-church-config-f.pkl")),
    ),
    GeneratorInfo(
        name="lsun-car-512",
        size=512,
        domain="cars",
        description="LSUN cars, StyleGAN2 config-f (512x384 content, letterboxed)",
        filename="stylegan2-car-config-f.pt",
        source=f"Karras et al., StyleGAN2 (NVIDIA), trained on LSUN car. {_NVIDIA_NC}.",
        manual=_converted_note("lsun-car-512", _SG2_PKL.format("stylegan2-car-config-f.pkl")),
    ),
)

_GENERATORS: dict[str, GeneratorInfo] = {info.name: info for info in _BUILTIN}


# -- accessors -------------------------------------------------------------------------


def list_generators() -> list[GeneratorInfo]:
    """Every registered generator, in registration order (copies)."""
    return [dataclasses.replace(info) for info in _GENERATORS.values()]


def generator_names() -> list[str]:
    return list(_GENERATORS)


def get_generator_info(name: str) -> GeneratorInfo:
    """The entry for `name` (a copy).

    Raises:
        UnknownGeneratorError: with the known names, e.g.
            "unknown generator 'ffqh-1024'; known: ffhq-1024, afhq-dog-512, ..."
    """
    info = _GENERATORS.get(name)
    if info is None:
        raise UnknownGeneratorError(
            f"unknown generator {name!r}; known: {', '.join(_GENERATORS)} "
            f"(or random-<size>, or a path to a .pt file)"
        )
    return dataclasses.replace(info)


def add_generator(info: GeneratorInfo, *, overwrite: bool = False) -> None:
    """Register a generator for this process (e.g. a team's own base model on a server)."""
    if not isinstance(info, GeneratorInfo):
        raise TypeError(f"add_generator takes a GeneratorInfo (got {type(info).__name__})")
    if info.name in _GENERATORS and not overwrite:
        raise ValueError(f"generator {info.name!r} is already registered (pass overwrite=True)")
    for other in _GENERATORS.values():
        if other.filename == info.filename and other.name != info.name:
            raise ValueError(
                f"{info.name}: cache file name {info.filename!r} is already used by {other.name}"
            )
    _GENERATORS[info.name] = dataclasses.replace(info)


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

    Raises:
        ValueError: for 'random-<size>' with a size that is not a power of two in 8..1024.
    """
    match = _RANDOM_NAME.fullmatch(name)
    if match is None:
        return None
    size = int(match.group(1))
    if size not in RANDOM_SIZES:
        raise ValueError(f"random generator size must be a power of two in 8..1024 (got {name!r})")
    return size


# -- the cache ---------------------------------------------------------------------------


def cache_dir() -> Path:
    """$NADA_CACHE_DIR, else the user's cache directory / 'stylegan-nada' (not created)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir()) / "stylegan-nada"


def cache_path(name: str) -> Path:
    """Where `name`'s file lives in the cache, whether or not it is there yet."""
    return cache_dir() / "generators" / get_generator_info(name).filename


def cached_path(name: str) -> Path | None:
    """The cached file for `name`, or None. Cheap: does not verify the checksum."""
    path = cache_path(name)
    return path if path.is_file() else None


_recorded_sha256 = recorded_sha256
_record_sha256 = record_sha256


def verify_cached(name: str) -> str:
    """Check `name`'s cached file against its published or recorded sha256; return it.

    A file with neither (placed by hand) is trusted now and its hash recorded.

    Raises:
        ManualDownloadError / DownloadError: the file is not in the cache.
        ChecksumError: the file does not match.
    """
    info = get_generator_info(name)
    path = cache_path(name)
    if not path.is_file():
        raise _not_cached_error(info, path)
    return verify_file(
        path,
        info.sha256,
        name=name,
        fix=(
            f"Delete it (and its .sha256) and run `nada models pull {name}`, or "
            f"`nada models add {name} PATH --force`"
        ),
    )


def _not_cached_error(info: GeneratorInfo, path: Path) -> DownloadError:
    if info.url is None:
        return ManualDownloadError(
            f"generator {info.name!r} is not in the cache and has no download URL. "
            f"{info.manual} Or copy the .pt to {path}, or pass a local path with "
            "--generator PATH."
        )
    return DownloadError(
        f"generator {info.name!r} is not in the cache ({path}); run `nada models pull {info.name}`"
    )


def resolve(name: str, *, progress: bool | None = None) -> Path:
    """The verified local file for `name`, downloading it into the cache if needed.

    Raises:
        UnknownGeneratorError: `name` is not registered.
        ManualDownloadError: no URL and not cached; the message says how to get the file.
        DownloadError: offline or the server failed; says where to place the file by hand.
        ChecksumError: the cached or downloaded file does not match its checksum.
    """
    info = get_generator_info(name)
    path = cache_path(name)
    if not path.is_file():
        if info.url is None:
            raise _not_cached_error(info, path)
        digest = download(info.url, path, sha256=info.sha256, name=name, progress=progress)
        if info.sha256 is None and _recorded_sha256(path) is None:
            log.warning("%s: no published checksum; recording sha256 %s", name, digest)
            _record_sha256(path, digest)
    verify_cached(name)
    return path


def install_file(name: str, source: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Copy a local file into the cache as `name` (what `nada models add` does).

    The file must match the published sha256 where there is one; its hash is recorded
    for later verification. Checking that it is a loadable generator is the caller's job
    (stylegan2.checkpoint), so that this module stays free of torch.
    """
    info = get_generator_info(name)
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"no such file: {source}")
    digest = sha256_file(source)
    if info.sha256 and digest != info.sha256:
        raise ChecksumError(
            f"{source} has sha256 {digest}, but the published sha256 of {name} is "
            f"{info.sha256}; it is not that generator",
            expected=info.sha256,
            got=digest,
        )
    path = cache_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock")):
        if path.is_file() and not overwrite:
            if sha256_file(path) == digest:
                _record_sha256(path, digest)
                return path
            raise FileExistsError(
                f"{name} is already cached at {path} with different contents; pass --force "
                "to replace it"
            )
        publish(source, path, copy=True)
        _record_sha256(path, digest)
    return path
