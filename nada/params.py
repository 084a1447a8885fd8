"""The parameters of one adaptation job: defaults, allowed ranges and validation.

This is the single source of truth shared by the engine (`worker.engine`), the CLI
(`nada adapt`) and the REST API (`backend`), so a value that one accepts the others accept
too, and every refusal names the knob the user controls. Plain Python: no torch here.

Defaults follow the StyleGAN-NADA paper (Gal et al., 2021, appendix I): Adam lr 0.002,
300 iterations, batch 2, ViT-B/32 + ViT-B/16, samples every 50 steps.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from nada.errors import ParamError

MAX_PROMPT_CHARS = 300  # CLIP's context is 77 tokens; the tokenizer check is the engine's.
SELECTION_METHODS = ("latent", "gradient")
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


# (min, max) for numeric fields; None means unbounded on that side.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "steps": (1, 5000),
    "layers": (0, 64),  # 0 trains every candidate layer
    "probe_steps": (1, 100),
    "probe_batch": (1, 64),
    "reselect_every": (1, 5000),
    "batch_size": (1, 64),
    "lr": (1e-6, 1.0),
    "sample_every": (1, 5000),
    "checkpoint_every": (0, 5000),  # 0 disables intermediate checkpoints
    "mixing": (0.0, 1.0),
    "seed": (0, 2**31 - 1),
    "n_samples": (1, 16),
    "sample_truncation": (0.0, 1.0),
    "lambda_direction": (0.0, 100.0),
    "lambda_global": (0.0, 100.0),
}


INT_FIELDS = frozenset(
    {"steps", "layers", "probe_steps", "probe_batch", "reselect_every", "batch_size",
     "sample_every", "checkpoint_every", "seed", "n_samples"}
)  # fmt: skip


@dataclass(frozen=True)
class AdaptParams:
    """Everything that defines one adaptation run (and is saved with its checkpoint)."""

    source_text: str  # what the base generator makes: 'photo', 'face', 'dog'
    target_text: str  # what it should make: 'sketch', 'Shrek', 'cat'
    generator: str = "ffhq-1024"  # registry name, 'random-<size>', or a .pt path (CLI only)
    clip_models: tuple[ClipSpec, ...] = field(default_factory=_default_clip_models)
    steps: int = 300  # training iterations
    layers: int = 10  # k: layers trained per step (0 = all candidates)
    selection: str = "latent"  # 'latent' (the paper's W+ probe) or 'gradient'
    include_torgb: bool = False  # let the to_rgb layers be selected too
    probe_steps: int = 1  # optimisation steps of the selection probe
    probe_batch: int = 8  # latents in the selection probe (the paper's auto_layer_batch)
    reselect_every: int = 1  # steps between layer selections (1 = every step, as the paper)
    batch_size: int = 2  # latents per training step
    lr: float = 0.002  # Adam learning rate; betas are (0, 0.99)
    sample_every: int = 50  # steps between progress samples (the last step always samples)
    checkpoint_every: int = 0  # steps between intermediate checkpoints (0 = none)
    mixing: float = 0.0  # probability of style mixing in training latents
    seed: int = 0  # seeds latents, noise and random CLIP weights
    n_samples: int = 4  # fixed latents in each progress sample
    sample_truncation: float = 0.7  # truncation psi of the progress samples
    lambda_direction: float = 1.0  # weight of the directional CLIP loss
    lambda_global: float = 0.0  # weight of the global CLIP loss

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["clip_models"] = [dataclasses.asdict(c) for c in self.clip_models]
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


def check_prompt(name: str, text: Any) -> None:
    if not isinstance(text, str):
        raise ParamError(name, f"must be text (got {type(text).__name__})")
    if not text.strip():
        raise ParamError(name, "must not be empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise ParamError(name, f"must be at most {MAX_PROMPT_CHARS} characters (got {len(text)})")
    if _CONTROL_CHARS.search(text):
        raise ParamError(name, "must not contain control characters")


def check_range(name: str, value: Any) -> None:
    lo, hi = RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(name, f"must be a number (got {value!r})")
    if value != value:  # NaN
        raise ParamError(name, "must be a number (got nan)")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParamError(name, f"must be {lo}..{hi} (got {value})")


def validate(p: AdaptParams) -> None:
    """Raise ParamError for the first field outside its allowed values."""
    check_prompt("source_text", p.source_text)
    check_prompt("target_text", p.target_text)
    if p.source_text.strip() == p.target_text.strip():
        raise ParamError("target_text", "must differ from source_text")
    if not isinstance(p.generator, str) or not p.generator.strip():
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
    if len(p.clip_models) > 4:
        raise ParamError(
            "clip_models", f"must name at most 4 CLIP models (got {len(p.clip_models)})"
        )
    for spec in p.clip_models:
        if not isinstance(spec.name, str) or not spec.name.strip():
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
    if p.lambda_direction == 0 and p.lambda_global == 0:
        raise ParamError("lambda_direction", "and lambda_global cannot both be 0")
