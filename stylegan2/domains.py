"""Ready-made domains: generators others adapted with StyleGAN-NADA and published, usable
like a finished job without training (`POST /domains/{name}/jobs`, `nada domains pull`).

The third table of the one model-file registry (stylegan2/model_files.py, kind 'domain'):
the cache path (`<cache>/domains/<file>`), trust on first use (no checksum is published
for these files), the override `NADA_DOMAIN_<NAME>` (a local copy or a mirror's URL) and
`add_domain` are the rules of every model file. An entry adds the base generator it was
adapted from (a name of stylegan2.registry: the photo, explore and compare views draw the
base beside it) and the prompts, where its authors stated them.

The original authors' files (Gal et al., rinongal/StyleGAN-nada) are rosinality-layout
checkpoints `{"g_ema": state_dict}` of FFHQ 1024 (`ffhq-1024`), which
`stylegan2.load_generator` reads. Which file names exist is taken from public material
only (docs/models.md, "Ready-made domains"). Torch-free: the API lists this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stylegan2 import registry
from stylegan2.model_files import Kind, ModelFile, ModelTable, UnknownDomainError

__all__ = [
    "DOMAINS",
    "DomainInfo",
    "UnknownDomainError",
    "add_domain",
    "base_size",
    "domain_names",
    "get_domain_info",
    "list_domains",
    "resolve",
]


@dataclass(frozen=True, kw_only=True)
class DomainInfo(ModelFile):
    """One published adapted generator."""

    kind: Kind = field(default="domain", init=False)
    base: str  # the generator it was adapted from: a registry name, or 'random-<size>'
    source_text: str = ""  # the prompts it was trained with; '': not published
    target_text: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.base:
            raise ValueError(f"{self.name}: base must name the generator it was adapted from")


_HF = "https://huggingface.co/rinong/stylegan-nada-models/resolve/main/{}"
_NVIDIA_NC = "NVIDIA Source Code License-NC (non-commercial use only)"
_LICENSE = (
    "No license stated for the weights by their authors (the code of rinongal/StyleGAN-nada "
    f"is MIT); fine-tuned from NVIDIA's FFHQ StyleGAN2, whose weights are under the {_NVIDIA_NC}"
)
_SOURCE = (
    "Gal et al., 'StyleGAN-NADA: CLIP-Guided Domain Adaptation of Image Generators' "
    "(rinongal/StyleGAN-nada); Hugging Face model repository rinong/stylegan-nada-models"
)
_MANUAL = (
    "The authors also publish their models on Google Drive (rinongal/StyleGAN-nada's "
    "README, 'Pre-Trained Models'): download {file} there and register it with "
    "`nada domains add {name} PATH`."
)
_NAMED = {
    "readme": "named by rinongal/StyleGAN-nada's README (its video example); that the "
    "Hugging Face repository holds this file is not confirmed by public code",
    "cog": "named by rinongal/StyleGAN-nada's Replicate predictor (cog_predict.py); that "
    "the Hugging Face repository holds this file is not confirmed by public code",
}


def _nada(name: str, file: str, what: str, named: str = "") -> DomainInfo:
    """One of the original authors' FFHQ 1024 domains on their Hugging Face repository."""
    return DomainInfo(
        name=name,
        filename=f"stylegan-nada-{file}",
        description=f"FFHQ faces adapted to {what} (StyleGAN-NADA)",
        url=_HF.format(file),
        base="ffhq-1024",
        family="stylegan2",
        domain=what,
        license=_LICENSE,
        license_id="nvidia-nc",
        source=_SOURCE,
        manual=_MANUAL.format(file=file, name=name),
        notes=_NAMED[named] if named else "",
    )


_BUILTIN = (
    # Loaded by name from rinong/stylegan-nada-models (`anime.pt`) in public code.
    _nada("nada-anime", "anime.pt", "anime drawings"),
    _nada("nada-joker", "joker.pt", "the Joker", "cog"),
    _nada("nada-modigliani", "modigliani.pt", "Modigliani paintings", "cog"),
    _nada("nada-pixar", "pixar.pt", "Pixar characters", "readme"),
    _nada("nada-ukiyoe", "ukiyoe.pt", "ukiyo-e prints", "readme"),
    _nada("nada-edvard-munch", "edvard_munch.pt", "Edvard Munch paintings", "readme"),
    _nada("nada-botero", "botero.pt", "Fernando Botero paintings", "readme"),
)

DOMAINS: ModelTable[DomainInfo] = ModelTable("domain", _BUILTIN)
"""The ready-made domains: one table of stylegan2.model_files, the rules of every model file."""

list_domains = DOMAINS.entries
domain_names = DOMAINS.names
get_domain_info = DOMAINS.get
add_domain = DOMAINS.add
resolve = DOMAINS.resolve


def base_size(info: DomainInfo) -> int:
    """Pixels a side of the domain's base generator (the size its file must draw).

    Raises:
        UnknownGeneratorError: the base is not a registered generator nor random-<size>.
    """
    size = registry.parse_random_name(info.base)
    return size if size is not None else registry.get_generator_info(info.base).size
