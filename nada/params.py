"""The parameters of one adaptation job: defaults, allowed ranges and validation.

This is the single source of truth shared by the engine (`worker.engine`), the CLI
(`nada adapt`) and the REST API (`backend`), so a value that one accepts the others accept
too, and every refusal names the knob the user controls. Plain Python: no torch here.

Defaults follow the StyleGAN-NADA paper (Gal et al., 2021, appendix I): Adam lr 0.002,
300 iterations, batch 2, ViT-B/32 + ViT-B/16, samples every 50 steps.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from nada.errors import ParamError

MAX_PROMPT_CHARS = 300  # CLIP's context is 77 tokens; the tokenizer check is the engine's.
SELECTION_METHODS = ("latent", "gradient")
MAX_CLIP_MODELS = 4
MAX_EXAMPLE_IMAGES = 16  # per side of an image-guided job; a style is a handful of pictures
IMAGE_FIELDS = ("target_images", "source_images")  # lists of example image names
_IMAGE_NAME = re.compile(r"^[0-9a-f]{64}$")  # sha256 of the stored PNG (invert/example_images)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class ClipSpec:
    """One CLIP model guiding the loss.

    name: open_clip architecture ('ViT-B-32'; OpenAI's 'ViT-B/32' spelling is accepted),
        optionally with ':pretrained' ('ViT-B-32:openai', 'ViT-B-32:random' for seeded
        random weights with no download).
    weight: this model's share of the loss (>= 0).
    """

    name: str
    weight: float = 1.0


def _default_clip_models() -> tuple[ClipSpec, ...]:
    return (ClipSpec("ViT-B-32", 1.0), ClipSpec("ViT-B-16", 1.0))


# Sections of the parameter list, in the order the page shows them.
GROUPS: dict[str, str] = {
    "prompt": "Prompts",
    "training": "Training",
    "selection": "Layer selection",
    "clip": "CLIP guidance",
    "output": "Progress output",
}


def param(
    default: Any = dataclasses.MISSING,
    *,
    help: str,  # one sentence: what the knob does (CLI --help, OpenAPI, the page's hint)
    label: str,  # how the page names it
    group: str,  # a key of GROUPS
    range: tuple[float | None, float | None] | None = None,  # (min, max); None = unbounded
    unit: str = "",  # what the number counts: 'steps', 'latents', ...
    choices: tuple[str, ...] | None = None,  # the allowed values of a text field
    flag: str | None = None,  # the `nada adapt` flag; default --<name with dashes>
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """Declare one AdaptParams field: its default and everything said about it, once.

    The CLI's flags (worker/cli.py), the API's request schema and its OpenAPI descriptions
    (backend/schemas.py), `GET /api/v1/params` and the page's form are all generated from
    these declarations (`describe()`)."""
    assert group in GROUPS, group
    metadata = {"help": help, "label": label, "group": group, "range": range, "unit": unit,
                "choices": choices, "flag": flag}  # fmt: skip
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class AdaptParams:
    """Everything that defines one adaptation run (and is saved with its checkpoint)."""

    source_text: str = param(
        "", help="what the base generator makes now: 'photo', 'face', 'dog' (needed with a "
        "target text)",
        label="Source text", group="prompt", flag="--source",
    )  # fmt: skip
    target_text: str = param(
        "", help="what it should make: 'pencil sketch', 'Shrek', 'cat' (may be empty when "
        "target images are given)",
        label="Target text", group="prompt", flag="--target",
    )  # fmt: skip
    target_images: tuple[str, ...] = param(
        (), help="example images of the target domain (their names: sha256 of the stored "
        "PNG); with or instead of the target text",
        label="Target images", group="prompt",
    )  # fmt: skip
    source_images: tuple[str, ...] = param(
        (), help="example images of the source domain; default: the base generator's own "
        "samples",
        label="Source images", group="prompt",
    )  # fmt: skip
    image_weight: float = param(
        0.5, help="the images' share of the CLIP direction when the target has both text and "
        "images (0 = text only, 1 = images only)",
        label="Image weight", group="prompt", range=(0.0, 1.0), flag="--target-image-weight",
    )  # fmt: skip
    image_views: int = param(
        8, help="randomly cropped and flipped views of each example image averaged into its "
        "CLIP embedding",
        label="Views per image", group="clip", range=(1, 64), unit="views",
    )  # fmt: skip
    generator: str = param(
        "ffhq-1024",
        help="base generator: a registry name (GET /generators, `nada models list`), "
        "random-<size> (seeded random weights), an uploaded name, or (CLI only) a .pt path",
        label="Base generator", group="prompt",
    )  # fmt: skip
    clip_models: tuple[ClipSpec, ...] = param(
        default_factory=_default_clip_models,
        help="CLIP models guiding the loss, each with its share of it; 'ViT-B-32:random' "
        "means seeded random weights, no download",
        label="CLIP models", group="clip",
    )  # fmt: skip
    steps: int = param(
        300, help="training iterations", label="Training steps", group="training",
        range=(1, 5000), unit="steps",
    )  # fmt: skip
    layers: int = param(
        10, help="k: layers trained per step; 0 trains every candidate layer",
        label="Layers per step (k)", group="selection", range=(0, 64), unit="layers",
    )  # fmt: skip
    selection: str = param(
        "latent", help="how the k layers are chosen: 'latent' (the paper's short W+ "
        "optimisation probe) or 'gradient' (the largest gradients)",
        label="Layer selection", group="selection", choices=SELECTION_METHODS,
    )  # fmt: skip
    include_torgb: bool = param(
        False, help="let the to_rgb (colour output) layers be selected too",
        label="Also select to_rgb layers", group="selection",
    )  # fmt: skip
    probe_steps: int = param(
        1, help="optimisation steps of the selection probe", label="Probe steps",
        group="selection", range=(1, 100), unit="steps",
    )  # fmt: skip
    probe_batch: int = param(
        8, help="latents in the selection probe (the paper's auto_layer_batch)",
        label="Probe batch", group="selection", range=(1, 64), unit="latents",
    )  # fmt: skip
    reselect_every: int = param(
        1, help="steps between layer selections (1 = every step, as the paper)",
        label="Reselect every", group="selection", range=(1, 5000), unit="steps",
    )  # fmt: skip
    batch_size: int = param(
        2, help="latents per training step", label="Batch size", group="training",
        range=(1, 64), unit="latents",
    )  # fmt: skip
    lr: float = param(
        0.002, help="Adam learning rate; betas are (0, 0.99)", label="Learning rate",
        group="training", range=(1e-6, 1.0),
    )  # fmt: skip
    sample_every: int = param(
        50, help="steps between progress images; the last step always samples",
        label="Sample every", group="output", range=(1, 5000), unit="steps",
    )  # fmt: skip
    checkpoint_every: int = param(
        0, help="steps between intermediate (resumable) checkpoints; 0 = none",
        label="Checkpoint every", group="output", range=(0, 5000), unit="steps",
    )  # fmt: skip
    mixing: float = param(
        0.0, help="probability of style mixing in the training latents",
        label="Style mixing", group="training", range=(0.0, 1.0),
    )  # fmt: skip
    seed: int = param(
        0, help="seeds the latents, the noise and random CLIP weights", label="Seed",
        group="training", range=(0, 2**31 - 1),
    )  # fmt: skip
    n_samples: int = param(
        4, help="fixed latents shown in each progress image", label="Images per sample",
        group="output", range=(1, 16), unit="images",
    )  # fmt: skip
    sample_truncation: float = param(
        0.7, help="truncation psi of the progress images", label="Sample truncation ψ",
        group="output", range=(0.0, 1.0),
    )  # fmt: skip
    score_latents: int = param(
        32, help="held-out latents the objective scores (direction, target, content, "
        "diversity) are measured on at each sample step; 0 = no scores",
        label="Score latents", group="output", range=(0, 256), unit="latents",
    )  # fmt: skip
    score_clip_model: str = param(
        "", help="an extra CLIP model that only measures the scores, never guides the loss "
        "(e.g. 'ViT-L-14:openai'): a judge the training did not optimise against; "
        "'' = none",
        label="Extra scoring CLIP model", group="output",
    )  # fmt: skip
    lambda_direction: float = param(
        1.0, help="weight of the directional CLIP loss (the paper's main loss)",
        label="Directional loss weight", group="clip", range=(0.0, 100.0),
    )  # fmt: skip
    lambda_global: float = param(
        0.0, help="weight of the global CLIP loss (pulls images toward the target text)",
        label="Global loss weight", group="clip", range=(0.0, 100.0),
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("source_text", "target_text"):  # one spelling of the same prompt
            text = getattr(self, name)
            if isinstance(text, str) and is_unicode(text):
                object.__setattr__(self, name, unicodedata.normalize("NFC", text).strip())
        for name in IMAGE_FIELDS:  # JSON brings a list; the params are hashable
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        validate(self)

    @property
    def effective_image_weight(self) -> float:
        """The target images' share of the CLIP direction: 0 without target images (text
        only), 1 without target text (images only), else `image_weight`."""
        if not self.target_images:
            return 0.0
        if not self.target_text:
            return 1.0
        return self.image_weight

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["clip_models"] = [dataclasses.asdict(c) for c in self.clip_models]
        for name in IMAGE_FIELDS:
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptParams:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParamError(unknown[0], f"is not a parameter; known: {', '.join(sorted(known))}")
        data = dict(data)
        if "clip_models" in data:
            data["clip_models"] = tuple(
                c if isinstance(c, ClipSpec) else ClipSpec(**c) for c in data["clip_models"]
            )
        return cls(**data)

    def replace(self, **changes: Any) -> AdaptParams:
        return dataclasses.replace(self, **changes)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


_FIELDS = {f.name: f for f in dataclasses.fields(AdaptParams)}
_TYPES = typing.get_type_hints(AdaptParams)
FIELD_NAMES = tuple(_FIELDS)

# Derived from the declarations above, for the validators: (min, max) of numeric fields,
# and the fields that must be whole numbers.
RANGES: dict[str, tuple[float | None, float | None]] = {
    name: f.metadata["range"] for name, f in _FIELDS.items() if f.metadata["range"] is not None
}
INT_FIELDS = frozenset(name for name, t in _TYPES.items() if t is int)
REQUIRED = tuple(name for name, f in _FIELDS.items() if _default(f) is dataclasses.MISSING)


def flag_of(name: str) -> str:
    """The `nada adapt` flag that sets field `name`."""
    return _FIELDS[name].metadata["flag"] or "--" + name.replace("_", "-")


def describe() -> list[dict[str, Any]]:
    """Every parameter as plain data, in declaration order: what `GET /api/v1/params`
    returns and the page builds its form from.

    Each entry: name, type ('string', 'integer', 'number', 'boolean', 'clip_models',
    'images': a list of example image names), required, default (absent when required),
    min/max (when bounded), unit, choices, maxLength (texts), maxItems (lists), help, label,
    group, flag. Then the groups in order."""
    out = []
    for name, f in _FIELDS.items():
        meta = f.metadata
        kind = "images" if name in IMAGE_FIELDS else {
            str: "string", int: "integer", float: "number", bool: "boolean"
        }.get(_TYPES[name], "clip_models")  # fmt: skip
        entry: dict[str, Any] = {"name": name, "type": kind, "required": name in REQUIRED}
        default = _default(f)
        if default is not dataclasses.MISSING:
            entry["default"] = (
                [dataclasses.asdict(c) for c in default]
                if kind == "clip_models"
                else list(default)
                if kind == "images"
                else default
            )
        if meta["range"] is not None:
            lo, hi = meta["range"]
            entry.update({k: v for k, v in (("min", lo), ("max", hi)) if v is not None})
        if meta["choices"]:
            entry["choices"] = list(meta["choices"])
        if name in ("source_text", "target_text"):
            entry["maxLength"] = MAX_PROMPT_CHARS
        if kind == "clip_models":
            entry.update(minItems=1, maxItems=MAX_CLIP_MODELS, weight={"min": 0, "max": 100})
        if kind == "images":
            entry.update(maxItems=MAX_EXAMPLE_IMAGES, pattern=_IMAGE_NAME.pattern)
        entry.update(
            unit=meta["unit"], help=meta["help"], label=meta["label"], group=meta["group"],
            flag=flag_of(name),
        )  # fmt: skip
        out.append(entry)
    return out


def is_unicode(text: str) -> bool:
    """Whether `text` can be stored and sent: no lone UTF-16 surrogates (JSON's '\\ud800'
    decodes to one, and neither UTF-8, PostgreSQL nor a JSON response can hold it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(name: str, text: Any) -> None:
    """Any text a request carries: a str that is valid Unicode."""
    if not isinstance(text, str):
        raise ParamError(name, f"must be text (got {type(text).__name__})")
    if not is_unicode(text):
        raise ParamError(name, "must be valid Unicode text (it holds a lone surrogate)")


def same_prompt(a: str, b: str) -> bool:
    """Prompts that differ only in case or spacing mean the same to CLIP's tokenizer."""
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def check_prompt(name: str, text: Any) -> None:
    check_text(name, text)
    if not text.strip():
        raise ParamError(name, "must not be empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise ParamError(name, f"must be at most {MAX_PROMPT_CHARS} characters (got {len(text)})")
    if _CONTROL_CHARS.search(text):
        raise ParamError(name, "must not contain control characters")


def check_image_names(name: str, names: Any) -> None:
    """A list of example image names: at most MAX_EXAMPLE_IMAGES, each 64 lowercase hex
    digits (what invert/example_images.py names a stored image), none twice."""
    if not isinstance(names, tuple | list) or isinstance(names, str):
        raise ParamError(name, f"must be a list of image names (got {type(names).__name__})")
    if len(names) > MAX_EXAMPLE_IMAGES:
        raise ParamError(name, f"must be at most {MAX_EXAMPLE_IMAGES} images (got {len(names)})")
    seen: set[str] = set()
    for item in names:
        if not isinstance(item, str) or not _IMAGE_NAME.match(item):
            raise ParamError(name, f"{item!r} is not an image name (64 lowercase hex digits)")
        if item in seen:
            raise ParamError(name, f"names image {item[:12]}… twice")
        seen.add(item)


def check_range(name: str, value: Any) -> None:
    lo, hi = RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(name, f"must be a number (got {value!r})")
    if value != value:  # NaN
        raise ParamError(name, "must be a number (got nan)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamError(name, f"must be a finite number (got {value})")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParamError(name, f"must be {lo}..{hi} (got {value})")


def validate(p: AdaptParams) -> None:
    """Raise ParamError for the first field outside its allowed values."""
    for name in IMAGE_FIELDS:
        check_image_names(name, getattr(p, name))
    if p.source_images and not p.target_images:
        raise ParamError("source_images", "need target_images too (they pair with them)")
    both = sorted(set(p.source_images) & set(p.target_images))
    if both:  # the image direction is the difference of the two sets' embeddings
        raise ParamError("source_images", f"image {both[0][:12]}… is a target image too")
    check_text("source_text", p.source_text)
    check_text("target_text", p.target_text)
    if not p.target_text and not p.target_images:
        raise ParamError("target_text", "must not be empty (or give target_images)")
    if p.target_text:  # a text target needs its source text
        check_prompt("source_text", p.source_text)
        check_prompt("target_text", p.target_text)
        if same_prompt(p.source_text, p.target_text):
            raise ParamError(
                "target_text", "must differ from source_text (not only in case or spaces)"
            )
    elif p.source_text:  # unused by an image-only target, but still stored: checked
        check_prompt("source_text", p.source_text)
    check_text("generator", p.generator)
    if not p.generator.strip():
        raise ParamError("generator", "must name a generator")
    for name in RANGES:
        value = getattr(p, name)
        if name in INT_FIELDS and (isinstance(value, bool) or not isinstance(value, int)):
            raise ParamError(name, f"must be an integer (got {value!r})")
        check_range(name, value)
    if p.selection not in SELECTION_METHODS:
        raise ParamError(
            "selection", f"must be one of {', '.join(SELECTION_METHODS)} (got {p.selection!r})"
        )
    if not isinstance(p.include_torgb, bool):
        raise ParamError("include_torgb", f"must be true or false (got {p.include_torgb!r})")
    if not p.clip_models:
        raise ParamError("clip_models", "must name at least one CLIP model")
    if len(p.clip_models) > MAX_CLIP_MODELS:
        raise ParamError(
            "clip_models",
            f"must name at most {MAX_CLIP_MODELS} CLIP models (got {len(p.clip_models)})",
        )
    for spec in p.clip_models:
        check_text("clip_models", spec.name)
        if not spec.name.strip():
            raise ParamError("clip_models", "entries need a model name")
        if (
            isinstance(spec.weight, bool)
            or not isinstance(spec.weight, int | float)
            or not (0 <= spec.weight <= 100)
        ):
            raise ParamError(
                "clip_models", f"weight of {spec.name} must be 0..100 (got {spec.weight!r})"
            )
    if all(spec.weight == 0 for spec in p.clip_models):
        raise ParamError("clip_models", "need at least one model with weight > 0")
    check_text("score_clip_model", p.score_clip_model)
    if len(p.score_clip_model) > 100:
        raise ParamError("score_clip_model", "must be at most 100 characters")
    if p.score_clip_model != p.score_clip_model.strip():
        raise ParamError("score_clip_model", "must not start or end with spaces")
    if p.lambda_direction == 0 and p.lambda_global == 0:
        raise ParamError("lambda_direction", "and lambda_global cannot both be 0")


def schema() -> dict[str, Any]:
    """`describe()` with the groups in page order: the body of `GET /api/v1/params`."""
    return {
        "fields": describe(),
        "groups": [{"name": name, "title": title} for name, title in GROUPS.items()],
    }
