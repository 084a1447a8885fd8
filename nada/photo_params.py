"""The parameters of the photo jobs: an inversion (a photo into a generator's W+) and an
edit (a stored inversion rendered through a finished job's adapted generator).

Declared like `nada.params.AdaptParams`, one `param()` per field (nada/declare.py), so one
declaration serves the engine (invert/), the CLI (`nada invert`), the API
(`POST /api/v1/inversions`, `GET /api/v1/inversions/params`) and the page: `from_dict`
validates and every refusal names its field. The encoder rule is here too, for the API and
the CLI alike. Plain Python, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from nada.declare import Params, check_fields, check_job_id, param, specs
from nada.edits import MAX_EDITS, MAX_STRENGTH, canonical_edits, check_edits
from nada.errors import ParamError
from nada.ids import ID_PATTERN

ENCODER_AUTO = "auto"  # the registry's encoder for this generator, else none (invert/weights.py)
ENCODER_NONE = "none"  # start refinement from the mean latent
_SHA256 = r"[0-9a-f]{64}"  # a photo's content address (sha256 of the stored PNG)


def _check_source(name: str, value: Any) -> None:
    """A generator or an encoder: a name, or (the CLI's) a path; never empty."""
    if not value:
        raise ParamError(name, f"must be a non-empty string (got {value!r})")


def _check_sha256(name: str, value: Any) -> None:
    if value is not None and not re.fullmatch(_SHA256, value):
        raise ParamError(name, "must be 64 lower-case hex digits")


def check_photo_family(family: str) -> None:
    """Photos go into StyleGAN2 generators only: the e4e encoder, the refinement and
    latent.pt speak rosinality's W+ and noise maps, which StyleGAN3 does not have.

    Raises:
        ParamError: field 'generator', for any other family.
    """
    if family != "stylegan2":
        raise ParamError(
            "generator",
            f"photo inversion (e4e) works on StyleGAN2 generators only; this one is a "
            f"{family}: adapt and explore it with seeds instead",
        )


def encoder_source(encoder: str, registered: str | None) -> str | None:
    """What `encoder` loads: 'auto' the generator's `registered` encoder (None where it has
    none), 'none' nothing (refinement starts from the mean latent), else the name or the
    path as given."""
    if encoder == ENCODER_AUTO:
        return registered
    if encoder == ENCODER_NONE:
        return None
    return encoder


def check_encoder(
    encoder: str, registered: Collection[str], *, is_file: Callable[[str], bool] | None = None
) -> None:
    """The encoder rule: 'auto', 'none', a registered encoder's name, or (only where
    `is_file` is given: the command line, never the service) an e4e .pt file that exists.
    `registered`: the encoders' names (invert/weights.py).

    Raises ParamError naming `encoder`."""
    if encoder in (ENCODER_AUTO, ENCODER_NONE) or encoder in registered:
        return
    if is_file is not None and is_file(encoder):
        return
    known = ", ".join(sorted(registered)) or "none registered"
    if is_file is None:
        raise ParamError("encoder", f"{encoder!r} is neither auto, none nor a registered "
                         f"encoder ({known})")  # fmt: skip
    raise ParamError(
        "encoder",
        f"{encoder!r} is neither auto, none, a registered encoder ({known}) nor an existing file",
    )


@dataclass(frozen=True)
class InvertParams(Params):
    """One photo put into a generator's W+ (e4e encoder, then refinement by optimisation)."""

    WHAT: ClassVar[str] = "an inversion"
    GROUPS: ClassVar[Mapping[str, str]] = {
        "photo": "Photo",
        "refinement": "Refinement",
        "output": "Progress output",
    }

    generator: str = param(
        "ffhq-1024", help="the base generator the code is for: a registry name, "
        "random-<size>, an uploaded name, or (CLI only) a .pt path; the jobs you edit with "
        "must use it",
        label="Base generator", group="photo", check=_check_source,
    )  # fmt: skip
    encoder: str = param(
        ENCODER_AUTO, help="'auto' (the generator's registered encoder, else none), 'none' "
        "(start from the mean latent), a registered encoder name ('e4e-ffhq'), or (CLI only) "
        "an e4e .pt file",
        label="Encoder", group="photo", check=_check_source,
    )  # fmt: skip
    align: bool = param(
        True, help="find the face and align it as FFHQ was; turn it off for a photo that is "
        "an aligned crop already (it is only centre-cropped and resized)",
        label="Align the face", group="photo", flag="--no-align",
    )  # fmt: skip
    refine_steps: int = param(
        100, help="optimisation steps on W+ after the encoder: fewer = faster, more = closer "
        "likeness; 0 keeps the encoder's code",
        label="Refinement steps", group="refinement", range=(0, 2000), unit="steps",
    )  # fmt: skip
    refine_lr: float = param(
        0.01, help="Adam's learning rate of the refinement",
        label="Refinement learning rate", group="refinement", range=(1e-5, 1.0),
    )  # fmt: skip
    pixel_weight: float = param(
        1.0, help="weight of the pixel (MSE) reconstruction loss",
        label="Pixel loss weight", group="refinement", range=(0.0, 100.0),
    )  # fmt: skip
    perceptual_weight: float = param(
        1.0, help="weight of the LPIPS-VGG perceptual loss (where its weights are on the "
        "worker, else 0 with a note); 0 turns it off",
        label="Perceptual loss weight", group="refinement", range=(0.0, 100.0),
    )  # fmt: skip
    latent_weight: float = param(
        0.01, help="pulls W+ toward the starting code: keeps it editable",
        label="Latent pull weight", group="refinement", range=(0.0, 100.0),
    )  # fmt: skip
    optimize_noise: bool = param(
        False, help="optimise the noise maps too: sharper, less editable",
        label="Optimise the noise maps", group="refinement",
    )  # fmt: skip
    sample_every: int = param(
        25, help="steps between pictures of the current reconstruction (0: only at the end)",
        label="Sample every", group="output", range=(0, 2000), unit="steps",
    )  # fmt: skip
    seed: int = param(
        0, help="seeds anything random (the noise maps when they are optimised)",
        label="Seed", group="refinement", range=(0, 2**31 - 1),
    )  # fmt: skip
    photo_sha256: str | None = param(
        None, help="the uploaded photo (set by the service from the upload)",
        label="Photo", group="photo", server=True, flag={}, pattern=_SHA256,
        check=_check_sha256,
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)


# Fields the service sets itself from the upload.
SERVER_SET = tuple(spec.name for spec in specs(InvertParams) if spec.decl.server)


@dataclass(frozen=True)
class EditParams(Params):
    """A finished inversion's code rendered through a finished job's adapted generator,
    moved along latent edit directions first ("me, older, as a Pixar character").

    The two ids are jobs the service checks against its jobs; `edits` names registry
    directions (nada/edits.py). There is no command line of its own (`nada generate
    --latent PT --checkpoint adapted.pt --edit age=2` does it from files).
    """

    WHAT: ClassVar[str] = "an edit"
    GROUPS: ClassVar[Mapping[str, str]] = {"edit": "Edit"}

    inversion_id: str = param(
        help="a finished inversion (POST /inversions): the photo's code",
        label="Inversion", group="edit", flag={}, pattern=ID_PATTERN, check=check_job_id,
    )  # fmt: skip
    job_id: str = param(
        help="the finished adaptation whose generator draws the code (the path's job)",
        label="Adaptation job", group="edit", flag={}, server=True, pattern=ID_PATTERN,
        check=check_job_id,
    )  # fmt: skip
    edits: str = param(
        "", help=f"latent edits applied to the photo's code before it is drawn: "
        f"'age=2,smile=-1', each a direction's name (GET /api/v1/directions) and its "
        f"strength, -{MAX_STRENGTH:g}..{MAX_STRENGTH:g}; at most {MAX_EDITS}",
        label="Edits", group="edit", flag={}, check=check_edits,
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_fields(self)
        # One text per set of edits: the same edit asked for again finds the first.
        object.__setattr__(self, "edits", canonical_edits(self.edits, paths=True))
