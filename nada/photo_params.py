"""The parameters of the photo jobs: an inversion (a photo into a generator's W+) and an
edit (a stored inversion rendered through a finished job's adapted generator).

Like `nada.params.AdaptParams`, one declaration serves the engine (invert/), the CLI
(`nada invert`) and the API (`POST /api/v1/inversions`): `from_dict` validates and every
refusal names its field. Plain Python, no torch.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from nada.errors import ParamError

ENCODER_AUTO = "auto"  # the registry's encoder for this generator, else none (invert/weights.py)
ENCODER_NONE = "none"  # start refinement from the mean latent
SERVER_SET = ("photo_sha256",)  # fields the service sets itself from the upload
_ID = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# field -> (min, max) for the numbers
INVERT_RANGES: dict[str, tuple[float, float]] = {
    "refine_steps": (0, 2000),
    "refine_lr": (1e-5, 1.0),
    "latent_weight": (0.0, 100.0),
    "perceptual_weight": (0.0, 100.0),
    "pixel_weight": (0.0, 100.0),
    "sample_every": (0, 2000),
    "seed": (0, 2**31 - 1),
}


def _check_number(name: str, value: Any, *, integer: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(name, f"must be a number (got {value!r})")
    if integer and not isinstance(value, int):
        raise ParamError(name, f"must be a whole number (got {value!r})")
    if not math.isfinite(value):
        raise ParamError(name, f"must be finite (got {value!r})")
    low, high = INVERT_RANGES[name]
    if not low <= value <= high:
        raise ParamError(name, f"must be between {low:g} and {high:g} (got {value!r})")


def _check_name(name: str, value: Any, *, allow_path: bool = False) -> None:
    if not isinstance(value, str) or not value:
        raise ParamError(name, f"must be a non-empty string (got {value!r})")
    if not allow_path and not _NAME.fullmatch(value):
        raise ParamError(
            name, f"must be a name of letters, digits, '.', '_' or '-' (got {value!r})"
        )


@dataclass(frozen=True)
class InvertParams:
    """One photo put into a generator's W+ (e4e encoder, then refinement by optimisation).

    generator: the base generator the code is for (registry name, random-<size>, an
        uploaded name, or (CLI only) a .pt path).
    encoder: 'auto' (the registry's encoder for this generator, if any), 'none' (start
        from the mean latent), a registered encoder name ('e4e-ffhq'), or (CLI) a path.
    align: FFHQ face alignment first; false for photos that are aligned crops already.
    refine_steps: optimisation steps on W+ after the encoder (0: the encoder's code as is).
    refine_lr: Adam's learning rate for the refinement.
    pixel_weight / perceptual_weight: the reconstruction loss's terms (MSE in [-1, 1]
        pixels; LPIPS-VGG where its weights are available, else 0 and a warning).
    latent_weight: pulls W+ toward the starting code (keeps it editable).
    optimize_noise: optimise the per-layer noise maps too (sharper, less editable).
    sample_every: write the current reconstruction every N steps (0: only at the end).
    seed: for anything random (noise maps when optimised).
    photo_sha256: the uploaded photo (service: its content address under the data dir).
    """

    generator: str = "ffhq-1024"
    encoder: str = ENCODER_AUTO
    align: bool = True
    refine_steps: int = 100
    refine_lr: float = 0.01
    pixel_weight: float = 1.0
    perceptual_weight: float = 1.0
    latent_weight: float = 0.01
    optimize_noise: bool = False
    sample_every: int = 25
    seed: int = 0
    photo_sha256: str | None = None

    def __post_init__(self) -> None:
        _check_name("generator", self.generator, allow_path=True)
        _check_name("encoder", self.encoder, allow_path=True)
        for name in ("align", "optimize_noise"):
            if not isinstance(getattr(self, name), bool):
                raise ParamError(name, f"must be true or false (got {getattr(self, name)!r})")
        for name in INVERT_RANGES:
            _check_number(name, getattr(self, name), integer=name in _INTS)
        if self.photo_sha256 is not None and not (
            isinstance(self.photo_sha256, str) and _SHA256.fullmatch(self.photo_sha256)
        ):
            raise ParamError("photo_sha256", "must be 64 lower-case hex digits")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InvertParams:
        return cls(**_known(cls, data))

    def replace(self, **changes: Any) -> InvertParams:
        return dataclasses.replace(self, **changes)


_INTS = {"refine_steps", "sample_every", "seed"}

# One line per field: the CLI's --help, GET /inversions/params and the page's hints.
INVERT_HELP: dict[str, str] = {
    "generator": "the base generator the code is for (the jobs you edit with must use it)",
    "encoder": "'auto' (the generator's registered encoder, if any), 'none' (start from the "
    "mean latent) or a registered encoder name",
    "align": "find the face and align it as FFHQ was; false for an already aligned crop",
    "refine_steps": "optimisation steps on W+ after the encoder: fewer = faster, more = "
    "closer likeness",
    "refine_lr": "the refinement's Adam learning rate",
    "pixel_weight": "weight of the pixel (MSE) reconstruction loss",
    "perceptual_weight": "weight of the LPIPS perceptual loss (where its weights are on the "
    "worker)",
    "latent_weight": "pulls W+ toward the starting code: keeps it editable",
    "optimize_noise": "optimise the noise maps too: sharper, less editable",
    "sample_every": "write the current reconstruction every N steps (0: only at the end)",
    "seed": "seed of anything random",
    "photo_sha256": "the photo's hash (set by the server from the upload)",
}


def describe_invert() -> list[dict[str, Any]]:
    """Every InvertParams field: name, type, default, min, max, help (in declaration order)."""
    out = []
    for f in dataclasses.fields(InvertParams):
        low, high = INVERT_RANGES.get(f.name, (None, None))
        kind = {"bool": "boolean", "int": "integer", "float": "number"}.get(str(f.type), "string")
        out.append(
            {"name": f.name, "type": kind, "default": f.default, "min": low, "max": high,
             "help": INVERT_HELP[f.name]}
        )  # fmt: skip
    return out


@dataclass(frozen=True)
class EditParams:
    """A finished inversion's code rendered through a finished job's adapted generator.

    inversion_id: the inversion job (its latent.pt).
    job_id: the adaptation job (its adapted.pt).
    """

    inversion_id: str
    job_id: str

    def __post_init__(self) -> None:
        for name in ("inversion_id", "job_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _ID.fullmatch(value):
                raise ParamError(name, f"must be a job id (32 hex digits; got {value!r})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EditParams:
        return cls(**_known(cls, data))


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ParamError("params", f"must be an object (got {type(data).__name__})")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ParamError(unknown[0], f"is not a parameter of {cls.__name__}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ParamError(missing[0], "is required")
    return dict(data)
