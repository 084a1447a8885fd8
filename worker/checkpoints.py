"""Intermediate checkpoints of a run, and the files a resumed run rewrites.

An intermediate checkpoint (`OUT/checkpoints/step_XXXXXX.pt`) has the adapted checkpoint's
layout, so stylegan2 loads it like any generator, plus 'resume': the step, the layers
selected last and the optimizer state. The RNG needs no saving: every draw of step s is
seeded by (seed, s). `read_resume_point` refuses a checkpoint made by a different job,
naming the parameter that differs.

A finished run writes the same layout as OUT/resume.pt (beside adapted.pt, which stays the
plain generator file): a continuation of it (`read_start_point`) trains on from there with
more steps, and may change how those steps train (CONTINUE_CHANGES).

Every file is written atomically (temporary file + `os.replace`), readable by others (0644).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nada.continuation import CONTINUE_CHANGES
from nada.params import AdaptParams, describe
from nada.rundir import atomic_open, write_text
from stylegan2.checkpoint import read_checkpoint
from stylegan2.family import family_of

# Parameters that may differ between a run and the run it resumes: they change neither the
# training steps already taken nor the ones to come.
RESUMABLE_CHANGES = frozenset({"steps", "sample_every", "checkpoint_every", "snapshot_every"})
# A continuation of a finished run (`start_from`, OUT/resume.pt) may change these and how the
# steps to come train: nada/continuation.py.
assert RESUMABLE_CHANGES <= CONTINUE_CHANGES


class ResumeError(ValueError):
    """resume_from cannot continue this run: unreadable, or made by a different job."""


@dataclass(frozen=True)
class ResumePoint:
    """What an intermediate checkpoint restores."""

    step: int  # training steps completed
    selected: tuple[str, ...]  # layers trained in the last step
    selections: dict[str, list[str]]  # sample step -> layers, for sample steps <= step
    scores: dict[str, dict[str, float]]  # sample step -> objective scores, steps <= step
    generator_state: dict[str, Tensor]  # the trainable generator's state dict
    optimizer_state: dict[str, Any]  # Adam's state dict
    params: dict[str, Any] = field(default_factory=dict)  # the run's parameters, as saved
    # metadata['continued_from'] of the run (a continuation's parent), None for a fresh run
    continued_from: dict[str, Any] | None = None
    checkpoint_sha256: str | None = None  # a finished run's adapted.pt (OUT/resume.pt only)
    # a modulation run's vectors (layer -> d), what it trains; None for a weights run
    modulation: dict[str, Tensor] | None = None


def write_intermediate_checkpoint(
    path: Path,
    generator: nn.Module,  # the trainable generator (either family)
    latent_avg: Tensor,  # the base generator's truncation centre
    metadata: dict[str, Any],  # the adapted checkpoint's metadata (plain data)
    *,
    step: int,  # training steps completed
    selected: tuple[str, ...],  # layers trained in the last step
    optimizer: torch.optim.Optimizer,
    checkpoint_sha256: str | None = None,  # the finished run's adapted.pt (OUT/resume.pt)
    modulation: dict[str, Tensor] | None = None,  # a modulation run's vectors (resumed)
) -> Path:
    """Write the adapted checkpoint's layout (the generator family's: StyleGAN2's or
    StyleGAN3's) plus 'resume' to `path`, atomically. A modulation run passes its baked
    generator (so the file loads as any generator) and its vectors (what it resumes)."""
    payload = family_of(generator).checkpoint_payload(generator, latent_avg, metadata)
    resume: dict[str, Any] = {
        "step": step,
        "selected": list(selected),
        "optimizer": optimizer.state_dict(),
    }
    if checkpoint_sha256 is not None:
        resume["checkpoint_sha256"] = checkpoint_sha256
    if modulation is not None:
        resume["modulation"] = {k: v.detach().cpu().clone() for k, v in modulation.items()}
    payload["resume"] = resume
    return atomic_torch_save(payload, path)


def read_resume_point(path: Path, params: AdaptParams, identity: dict[str, Any]) -> ResumePoint:
    """Read an intermediate checkpoint written by `write_intermediate_checkpoint` and check
    that it belongs to this job: same parameters (but RESUMABLE_CHANGES), same base generator
    (`identity`: name, sha256, seed), and no further than `params.steps`.

    Raises:
        ResumeError: unreadable, not an intermediate checkpoint, or another job's.
    """
    point = _read_point(path, params, identity, RESUMABLE_CHANGES)
    if point.step > params.steps:
        raise ResumeError(
            f"{path} is at step {point.step}; steps must be at least that (got {params.steps})"
        )
    return point


def read_start_point(path: Path, params: AdaptParams, identity: dict[str, Any]) -> ResumePoint:
    """Read a finished run's OUT/resume.pt for a continuation: the same job but for
    CONTINUE_CHANGES, from the same base generator, and `params.steps` (the total) past it.

    Raises:
        ResumeError: unreadable, another job's, or no steps left to run.
    """
    point = _read_point(path, params, identity, CONTINUE_CHANGES)
    if params.steps <= point.step:
        raise ResumeError(
            f"{path} is at step {point.step}; a continuation's steps (the total) must be "
            f"more than that (got {params.steps})"
        )
    return point


def _read_point(
    path: Path, params: AdaptParams, identity: dict[str, Any], may_change: frozenset[str]
) -> ResumePoint:
    try:
        ckpt = read_checkpoint(path)
    except ValueError as exc:  # CheckpointError
        raise ResumeError(str(exc)) from None
    if not isinstance(ckpt, dict) or "resume" not in ckpt:
        raise ResumeError(f"{path} is not an intermediate checkpoint of a run")
    meta = ckpt.get("metadata") or {}
    old, new = meta.get("params") or {}, params.to_dict()
    for key in sorted(set(old) | set(new)):
        # A parameter added since the checkpoint was written: it trained with the default.
        before = old[key] if key in old else _DEFAULTS.get(key)
        if key not in may_change and _plain(before) != _plain(new.get(key)):
            raise ResumeError(
                f"{path} was trained with {key}={before!r}; this run has "
                f"{key}={new.get(key)!r} (only {', '.join(sorted(may_change))} may change)"
            )
    old_base = meta.get("base") or {}
    for key in ("name", "sha256", "seed"):
        if old_base.get(key) != identity.get(key):
            raise ResumeError(
                f"{path} was trained from generator {old_base.get('name')!r} "
                f"({key} {old_base.get(key)!r}); this run's is {identity.get(key)!r}"
            )
    resume = ckpt["resume"]
    step = int(resume["step"])
    return ResumePoint(
        step=step,
        selected=tuple(resume["selected"]),
        selections={k: v for k, v in (meta.get("selected_layers") or {}).items() if int(k) <= step},
        scores={k: v for k, v in (meta.get("scores") or {}).items() if int(k) <= step},
        generator_state=ckpt["g_ema"],
        optimizer_state=resume["optimizer"],
        params=dict(old),
        continued_from=meta.get("continued_from"),
        checkpoint_sha256=resume.get("checkpoint_sha256"),
        modulation=resume.get("modulation"),
    )


_DEFAULTS = {entry["name"]: entry["default"] for entry in describe() if "default" in entry}


def _plain(value: Any) -> Any:
    """As JSON has it: a tuple and a list of the same items are the same parameter value."""
    return json.loads(json.dumps(value))


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep the metrics of steps <= last_step (a resumed run rewrites the rest)."""
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= last_step
    ]
    write_text(path, "".join(f"{line}\n" for line in kept))


def atomic_torch_save(obj: Any, path: Path) -> Path:
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)
    return path
