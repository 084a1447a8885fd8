"""Continuing a finished adaptation: which parameters a continuation may change, and its
parameters from its parent's.

A continuation is a new run that starts from a finished run's weights and Adam state
(OUT/resume.pt) and trains `more` steps on. Its `steps` is the total, so its steps are
numbered after its parent's, and with nothing changed it ends exactly where one run of the
summed steps would (worker/engine.py). Everything that decided the steps so far (prompts,
generator, seed, batch, CLIP models, ...) stays; what may change only steers the steps to
come. One source for the API (POST /jobs/{id}/continue), the CLI (`nada adapt
--resume-from-result`) and the engine's check (worker/checkpoints.py). Stdlib only.
"""

from __future__ import annotations

from typing import Any

from nada.errors import ParamError
from nada.params import RANGES, AdaptParams

CONTINUE_CHANGES = frozenset(
    {
        "steps",  # the total: the parent's steps plus the continuation's
        "sample_every",
        "checkpoint_every",
        "snapshot_every",
        "lr",
        "layers",
        "lambda_direction",
        "lambda_global",
        "reselect_every",
    }
)


def max_more_steps(parent_steps: int) -> int:
    """How many steps a continuation of a run of `parent_steps` may add: the total stays
    within the steps parameter's range."""
    high = RANGES["steps"][1]
    assert high is not None
    return max(int(high) - parent_steps, 0)


def continued_params(parent: dict[str, Any], more: Any, changes: dict[str, Any]) -> AdaptParams:
    """The parameters of a continuation of the run with parameters `parent` (as stored):
    `more` steps on, with `changes` (names in CONTINUE_CHANGES but steps).

    Raises:
        ParamError: naming `steps` (more < 1, or a total past the limit), a parameter that
            may not change, or whatever AdaptParams refuses in the result.
    """
    if isinstance(more, bool) or not isinstance(more, int) or more < 1:
        raise ParamError("steps", f"must be at least 1 more step (got {more!r})")
    for name in changes:
        if name == "steps" or name not in CONTINUE_CHANGES:
            allowed = ", ".join(sorted(CONTINUE_CHANGES - {"steps"}))
            raise ParamError(name, f"cannot change in a continuation (only {allowed} can)")
    done = int(parent.get("steps", 0))
    room = max_more_steps(done)
    if more > room:
        raise ParamError(
            "steps",
            f"must be at most {room} more: the job ran {done} and a run has at most "
            f"{RANGES['steps'][1]} (got {more})",
        )
    return AdaptParams.from_dict({**parent, **changes, "steps": done + more})
