"""Latent edit directions: InterfaceGAN boundaries in a generator's W space (age, smile, ...).

The fourth table of the one model-file registry (stylegan2/model_files.py, kind
'direction'): the cache path (`<cache>/directions/<file>`), trust on first use (no checksum
is published for these files), the override `NADA_DIRECTION_<NAME>` (a local copy or a
mirror's URL), `nada directions pull|add` and `add_direction` are the rules of every model
file. An entry adds the base generator whose W space it was found in: a direction means
nothing in another generator's W, so renders and photo edits of a job on another base are
refused (worker/latent_edits.py applies them; nada/edits.py parses "age=2").

The original StyleGAN-NADA repository (Gal et al., rinongal/StyleGAN-nada) keeps six such
files for FFHQ 1024 (`ffhq-1024`) in `editing/interfacegan_boundaries/`: plain tensors
`torch.load` reads, of 512 numbers (`[1, 512]`; its `generate_videos.py` adds
`distance * boundary` to an e4e code of `[18, 512]`). Which files exist is taken from public
material only: the repository's listing at commit 32f9637 holds age, beard, gender,
hair_length and smile; `pose` is named by its `generate_videos.py` (VALID_EDITS and the
default `edit_directions`) but was not in the listing seen, so its entry has no URL and
says how to place the file by hand. Torch-free: the API lists this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stylegan2.model_files import Kind, ModelFile, ModelTable, UnknownDirectionError

__all__ = [
    "DIRECTIONS",
    "DirectionInfo",
    "UnknownDirectionError",
    "add_direction",
    "direction_names",
    "get_direction_info",
    "list_directions",
    "resolve",
]

MAX_DIRECTION_BYTES = 4 * 1024 * 1024  # a [18, 512] float32 tensor is 37 KB; a cap, not a guess


@dataclass(frozen=True, kw_only=True)
class DirectionInfo(ModelFile):
    """One published direction in a base generator's W space."""

    kind: Kind = field(default="direction", init=False)
    base: str  # the generator whose W space it is: a registry name
    suggested: tuple[float, ...] = ()  # strengths its authors use (the demo's distances)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.base:
            raise ValueError(f"{self.name}: base must name the generator whose W it is in")


_COMMIT = "32f9637ca8c9434c1cbb0fe90467e8ecdbe2c3d2"  # where the listing shows the files
_RAW = (
    f"https://raw.githubusercontent.com/rinongal/StyleGAN-nada/{_COMMIT}/"
    "editing/interfacegan_boundaries/{}.pt"
)
_REPO_PATH = "rinongal/StyleGAN-nada, editing/interfacegan_boundaries/{}.pt"
_SOURCE = (
    "InterfaceGAN boundaries (Shen et al., 'Interpreting the Latent Space of GANs for "
    "Semantic Face Editing') as shipped by StyleGAN-NADA (Gal et al., rinongal/StyleGAN-nada, "
    "MIT license) in editing/interfacegan_boundaries/"
)
_LICENSE = "MIT (rinongal/StyleGAN-nada's license; no separate license stated for the files)"
_MANUAL = (
    "Download {path} from the repository (e.g. `git clone "
    "https://github.com/rinongal/StyleGAN-nada`) and register it with "
    "`nada directions add {name} PATH`."
)


def _boundary(
    name: str, what: str, suggested: tuple[float, ...], *, listed: bool = True
) -> DirectionInfo:
    """One of the original repository's FFHQ directions."""
    path = _REPO_PATH.format(name)
    return DirectionInfo(
        name=name,
        filename=f"interfacegan-ffhq-{name}.pt",
        description=f"{what} (InterfaceGAN, FFHQ 1024's W)",
        url=_RAW.format(name) if listed else None,
        base="ffhq-1024",
        family="stylegan2",
        domain="human faces (FFHQ)",
        size_mb=0.01,
        license=_LICENSE,
        license_id="mit",
        source=_SOURCE,
        suggested=suggested,
        manual=_MANUAL.format(path=path, name=name),
        notes=""
        if listed
        else (
            "named by the repository's generate_videos.py (VALID_EDITS); not in the file "
            f"listing seen at commit {_COMMIT[:7]}, so no download URL is claimed"
        ),
    )


# The suggested strengths are generate_videos.py's SUGGESTED_DISTANCES (which sign does
# what is the files' own; the repository does not say).
_BUILTIN = (
    _boundary("age", "age", (4.0, -4.0)),
    _boundary("smile", "smile", (2.0, -2.0)),
    _boundary("pose", "head pose", (3.0, -3.0), listed=False),
    _boundary("gender", "gender", (3.0, -3.0)),
    _boundary("hair_length", "hair length", (-4.0,)),
    _boundary("beard", "beard", (2.0,)),
)

DIRECTIONS: ModelTable[DirectionInfo] = ModelTable("direction", _BUILTIN)
"""The edit directions: one table of stylegan2.model_files, the rules of every model file."""

list_directions = DIRECTIONS.entries
direction_names = DIRECTIONS.names
get_direction_info = DIRECTIONS.get
add_direction = DIRECTIONS.add
resolve = DIRECTIONS.resolve
