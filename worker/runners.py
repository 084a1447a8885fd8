"""What a worker runs for each kind of job (jobs/kinds.py): the engine call and its inputs.

`worker.tasks.run_job` does the rest for every kind alike: claim, lease, progress, cancel,
time limit, resume from the newest intermediate checkpoint, failure codes, and publishing
the kind's `result_files` from the attempt's working directory into the job's.

An engine call has the signature of `worker.engine.run_adaptation`:
`engine(params, out_dir, *, device, on_progress, should_cancel, resume_from, models,
**extra) -> result`, where the result has `samples` (progress images, in step order) and
the sha256 of the kind's main result file (`Runner.digest`). The engine is imported on a
job's first use, so importing this module costs nothing (no torch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.generators import uploaded_path
from jobs.settings import Settings
from stylegan2 import registry

EngineCall = Callable[..., Any]


@dataclass(frozen=True)
class Runner:
    engine: Callable[[], EngineCall]  # returns the engine function (imports it lazily)
    extra_kwargs: Callable[[Any, Settings], dict[str, Any]]  # kind-specific engine inputs
    digest: Callable[[Any], str]  # sha256 of the result file, from the engine's result


def _adaptation_engine() -> EngineCall:
    from worker.engine import run_adaptation  # torch: imported on the first job only

    return run_adaptation


def _adaptation_inputs(params: Any, settings: Settings) -> dict[str, Any]:
    """A generator uploaded through POST /generators is a file in the data dir."""
    uploaded = uploaded_path(params.generator, settings.data_dir)
    if uploaded is not None and params.generator not in registry.generator_names():
        return {"generator_path": uploaded}
    return {}


def _checkpoint_digest(result: Any) -> str:
    return str(result.checkpoint_sha256)


RUNNERS: dict[str, Runner] = {
    "adapt": Runner(
        engine=_adaptation_engine, extra_kwargs=_adaptation_inputs, digest=_checkpoint_digest
    ),
}


def runner_for(kind: str) -> Runner:
    try:
        return RUNNERS[kind]
    except KeyError:
        raise LookupError(f"this worker cannot run jobs of kind {kind!r}") from None


def published_samples(result: Any) -> tuple[Path, ...]:
    return tuple(getattr(result, "samples", ()))
