"""A sweep: one adaptation job per combination of a grid of parameter values, the way the
method is really used ("k from 3 to 12, 150 or 300 steps"), created and canceled together.

Torch-free and HTTP-free: the API and `nada sweep --server` check a grid here before any
job exists, and the local `nada sweep` runs the same combinations one after another.
A grid maps parameter names (nada/params.py) to lists of values; its combinations are the
product in the grid's own key order, the last key changing fastest.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nada.errors import ParamError
from nada.params import FIELD_NAMES, AdaptParams

MAX_VALUES = 16  # per parameter
DEFAULT_MAX_JOBS = 32  # combinations in one sweep (NADA_MAX_SWEEP_JOBS)


@dataclass(frozen=True)
class Combination:
    index: int  # 0-based, grid order
    values: dict[str, Any]  # the grid's value of each swept parameter
    params: AdaptParams  # base + values, validated

    def label(self) -> str:
        """'layers=3 steps=150': what tells this job apart from the others."""
        return " ".join(f"{k}={_short(v)}" for k, v in self.values.items())


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_grid(grid: Any, *, max_jobs: int = DEFAULT_MAX_JOBS) -> dict[str, list[Any]]:
    """The grid's shape: known names, non-empty lists of distinct values, not too many.

    Raises:
        ParamError: field 'grid' or 'grid.<name>', saying what is wrong.
    """
    if not isinstance(grid, dict) or not grid:
        raise ParamError("grid", "must be an object mapping parameter names to lists of values")
    size = 1
    for name, values in grid.items():
        if name not in FIELD_NAMES:
            raise ParamError(f"grid.{name}", f"is not a parameter; known: {', '.join(FIELD_NAMES)}")
        if not isinstance(values, list) or not values:
            raise ParamError(f"grid.{name}", "must be a non-empty list of values")
        if len(values) > MAX_VALUES:
            raise ParamError(f"grid.{name}", f"has {len(values)} values; at most {MAX_VALUES}")
        seen = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(seen)) != len(seen):
            raise ParamError(f"grid.{name}", "lists a value twice")
        size *= len(values)
    if size > max_jobs:
        raise ParamError(
            "grid", f"makes {size} jobs; at most {max_jobs} in one sweep (NADA_MAX_SWEEP_JOBS)"
        )
    return grid


def expand(
    base: dict[str, Any],
    grid: dict[str, list[Any]],
    *,
    to_params: Callable[[dict[str, Any]], AdaptParams] = AdaptParams.from_dict,
    max_jobs: int = DEFAULT_MAX_JOBS,
) -> list[Combination]:
    """Every combination of `grid` over `base`, each validated by `to_params` (the API passes
    its strict request model); all or nothing.

    Raises:
        ParamError: the grid's shape, or the first combination that is not a valid job; the
            field is 'grid.<name>' when a swept value is at fault, and the message names the
            combination.
    """
    check_grid(grid, max_jobs=max_jobs)
    overlap = sorted(set(base) & set(grid))
    if overlap:
        raise ParamError(f"base.{overlap[0]}", "is swept in the grid too; give it in one place")
    names = list(grid)
    out = []
    for index, values in enumerate(itertools.product(*(grid[n] for n in names))):
        chosen = dict(zip(names, values, strict=True))
        try:
            params = to_params({**base, **chosen})
        except ParamError as exc:
            where = f"grid.{exc.field}" if exc.field in chosen else f"base.{exc.field}"
            label = " ".join(f"{k}={_short(v)}" for k, v in chosen.items())
            raise ParamError(where, f"in combination {index + 1} ({label}): {exc}") from None
        out.append(Combination(index, chosen, params))
    _refuse_same_jobs(out)
    return out


def _refuse_same_jobs(combos: list[Combination]) -> None:
    """Two values that the parameters normalise alike (`0` and `0.0`, two spellings of one
    generator or prompt) would queue the same job twice: refuse the grid, naming them."""
    first: dict[str, Combination] = {}
    for combo in combos:
        key = json.dumps(combo.params.to_dict(), sort_keys=True, default=str)
        twin = first.setdefault(key, combo)
        if twin is combo:
            continue
        name = next(
            n for n in combo.values if _spelled(combo.values[n]) != _spelled(twin.values[n])
        )
        raise ParamError(
            f"grid.{name}",
            f"values {_short(_spelled(twin.values[name]))} and "
            f"{_short(_spelled(combo.values[name]))} make the "
            f"same job (combinations {twin.index + 1} and {combo.index + 1}); list each once",
        )


def _spelled(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def varying(grid: dict[str, list[Any]]) -> list[str]:
    """The swept parameters that take more than one value (the comparison's labels)."""
    return [name for name, values in grid.items() if len(values) > 1]
