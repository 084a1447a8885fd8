"""nada.continuation: a continuation's parameters from its parent's, and what may change."""

from __future__ import annotations

import re

import pytest

from nada.continuation import CONTINUE_CHANGES, continued_params, max_more_steps
from nada.errors import ParamError
from nada.params import AdaptParams

PARENT = AdaptParams("photo", "sketch", steps=300, lr=0.002, seed=4).to_dict()


def test_the_steps_are_the_total_and_the_rest_is_the_parents() -> None:
    child = continued_params(PARENT, 200, {"lr": 0.001, "layers": 4})
    assert (child.steps, child.lr, child.layers) == (500, 0.001, 4)
    assert {k: v for k, v in child.to_dict().items() if k not in ("steps", "lr", "layers")} == {
        k: v for k, v in PARENT.items() if k not in ("steps", "lr", "layers")
    }
    assert max_more_steps(300) == 4700 and max_more_steps(5000) == 0


@pytest.mark.parametrize(
    ("more", "changes", "field", "message"),
    [
        (0, {}, "steps", "at least 1 more step (got 0)"),
        (True, {}, "steps", "at least 1 more step (got True)"),
        (4701, {}, "steps", "at most 4700 more: the job ran 300"),
        (1, {"seed": 5}, "seed", "cannot change in a continuation"),
        (1, {"target_text": "oil"}, "target_text", "cannot change in a continuation"),
        (1, {"steps": 9}, "steps", "cannot change in a continuation"),
        (1, {"lr": 2.0}, "lr", "must be 1e-06..1.0 (got 2.0)"),
        (1, {"lambda_direction": 0.0}, "lambda_direction", "cannot both be 0"),
    ],
)
def test_refusals_name_the_field(more, changes, field, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParamError, match=re.escape(message)) as info:
        continued_params(PARENT, more, changes)
    assert info.value.field == field


def test_what_may_change_steers_only_the_steps_to_come() -> None:
    assert set(PARENT) >= CONTINUE_CHANGES
    assert not CONTINUE_CHANGES & {"source_text", "target_text", "generator", "seed", "batch_size"}
