"""The parameters of one adaptation job: defaults, allowed ranges and validation.

This is the single source of truth shared by the engine (`worker.engine`), the CLI
(`nada adapt`) and the REST API (`backend`), so a value that one accepts the others accept
too, and every refusal names the knob the user controls. Each field is declared once with
`nada.declare.param()`, as every kind's parameters are. Plain Python: no torch here.

Defaults follow the StyleGAN-NADA paper (Gal et al., 2021, appendix I): Adam lr 0.002,
300 iterations, batch 2, ViT-B/32 + ViT-B/16, samples every 50 steps.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from nada import scores
from nada.declare import Params, check_fields, check_number, describe_field, param, specs
from nada.declare import check_text as check_text  # re-exported: the one text check
from nada.declare import is_unicode as is_unicode
from nada.errors import ParamError

MAX_PROMPT_CHARS = 300  # CLIP's context is 77 tokens; the tokenizer check is the engine's.
SELECTION_METHODS = ("latent", "gradient")
# What training changes: the generator's weights (StyleGAN-NADA), or one vector per
# modulated layer multiplying its style (HyperDomainNet's domain modulation; a domain.pt of
# a few tens of KB). worker/modulation.py, docs/engine.md.
PARAMETRIZATIONS = ("weights", "modulation")
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


@dataclass(frozen=True)
class AdaptParams(Params):
    """Everything that defines one adaptation run (and is saved with its checkpoint)."""

    WHAT: ClassVar[str] = "an adaptation"
    GROUPS: ClassVar[Mapping[str, str]] = GROUPS

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
        (), help="example images of the target domain, with or instead of the target text",
        label="Target images", group="prompt", type="images", pattern=_IMAGE_NAME.pattern,
    )  # fmt: skip
    source_images: tuple[str, ...] = param(
        (), help="example images of the source domain; default: the base generator's own "
        "samples",
        label="Source images", group="prompt", type="images", pattern=_IMAGE_NAME.pattern,
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
        label="CLIP models", group="clip", type="clip_models",
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
    parametrization: str = param(
        "weights", help="what training changes: 'weights' (the layers' weights, "
        "StyleGAN-NADA) or 'modulation' (one vector per layer scaling its style, all "
        "weights frozen: the result is a domain file of a few tens of KB; StyleGAN2 only)",
        label="Parametrization", group="training", choices=PARAMETRIZATIONS,
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
    snapshot_every: int = param(
        0, help="steps between snapshots: the generator (with its scores) kept after the "
        "run at those steps, each downloadable and continuable from; 0 = none",
        label="Snapshot every", group="output", range=(0, 5000), unit="steps",
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
            # (a control character stays for validate() to refuse, not turned into a space)
            if isinstance(text, str) and is_unicode(text) and not _CONTROL_CHARS.search(text):
                object.__setattr__(self, name, normal_prompt(text))
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptParams:
        if isinstance(data, dict) and "clip_models" in data:  # stored as JSON objects
            data = dict(data)
            data["clip_models"] = tuple(
                c if isinstance(c, ClipSpec) else ClipSpec(**c) for c in data["clip_models"]
            )
        return super().from_dict(data)


# Derived from the declarations above, for the validators and the generators.
_SPECS = {spec.name: spec for spec in specs(AdaptParams)}
FIELD_NAMES = tuple(_SPECS)
RANGES: dict[str, tuple[float | None, float | None]] = {
    name: spec.decl.range for name, spec in _SPECS.items() if spec.decl.range is not None
}
INT_FIELDS = frozenset(name for name, spec in _SPECS.items() if spec.integer)
REQUIRED = tuple(name for name, spec in _SPECS.items() if spec.required)


def flag_of(name: str) -> str:
    """The `nada adapt` flag that sets field `name`."""
    flag = _SPECS[name].flag()
    assert flag is not None, name
    return flag


def describe() -> list[dict[str, Any]]:
    """Every parameter as plain data, in declaration order: what `GET /api/v1/params`
    returns and the page builds its form from.

    Each entry as `nada.declare.describe_field` says (name, type: 'string', 'integer',
    'number', 'boolean', 'clip_models', 'images': a list of example image names; required,
    default, min/max, unit, choices, help, label, group, flag), and maxLength (prompts),
    minItems/maxItems (lists), weight {min, max} (each CLIP model's), pattern (each image
    name)."""
    out = []
    for spec in _SPECS.values():
        entry = describe_field(spec)
        if spec.name in ("source_text", "target_text"):
            entry["maxLength"] = MAX_PROMPT_CHARS
        if spec.type == "clip_models":
            entry.update(minItems=1, maxItems=MAX_CLIP_MODELS, weight={"min": 0, "max": 100})
        if spec.type == "images":
            entry["maxItems"] = MAX_EXAMPLE_IMAGES
        out.append(entry)
    return out


# Characters that show nothing and mean nothing to CLIP's tokenizer: zero-width space,
# non-joiner and joiner, word joiner, Mongolian vowel separator, BOM (zero-width no-break).
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\u180e\ufeff"))


def normal_prompt(text: str) -> str:
    """One spelling of a prompt, as a job stores it: NFKC (NFD and NFC alike, full-width
    `ＰＨＯＴＯ` as `PHOTO`, ligatures spelled out), zero-width characters removed, runs of
    white space (tabs, line breaks) as one space, none at either end."""
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    return " ".join(text.split())


def same_prompt(a: str, b: str) -> bool:
    """Prompts that differ only in case, spacing or the form of their characters (NFKC,
    zero-width characters) mean the same to CLIP's tokenizer."""

    def key(text: str) -> str:
        return unicodedata.normalize("NFKC", normal_prompt(text).casefold())

    return key(a) == key(b)


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
    """A numeric field's declared range (and wholeness): `nada.declare.check_number`."""
    check_number(name, value, RANGES[name], integer=name in INT_FIELDS)


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
                "target_text",
                "must differ from source_text (not only in case, spaces or the form of its "
                "characters)",
            )
    elif p.source_text:  # unused by an image-only target, but still stored: checked
        check_prompt("source_text", p.source_text)
    check_text("generator", p.generator)
    if not p.generator.strip():
        raise ParamError("generator", "must name a generator")
    check_fields(p)  # each field's declared type, range and choices
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
        "scores": scores.describe(),
    }
