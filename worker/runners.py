"""What a worker runs for each kind of job (jobs/kinds.py): the engine call and its inputs.

`worker.attempts.run_job` does the rest for every kind alike: claim, lease, progress, cancel,
time limit, resume from the newest intermediate checkpoint, failure codes, and publishing
the kind's `result_files` from the attempt's working directory into the job's.

An engine call has the signature of `worker.engine.run_adaptation`:
`engine(params, out_dir, *, device, on_progress, should_cancel, resume_from, models,
**extra) -> result`, where the result has `samples` (progress images, in step order) and
the sha256 of the kind's main result file (`Runner.digest`). Progress and cancellation
speak `nada.events` whatever the kind. The engine is imported on a job's first use, so
importing this module costs nothing (no torch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs import storage
from jobs.directions import direction_files
from jobs.generators import uploaded_path
from jobs.settings import Settings
from nada import rundir
from nada.edits import direction_names
from nada.errors import InputError
from stylegan2 import registry

EngineCall = Callable[..., Any]


@dataclass(frozen=True)
class Runner:
    engine: Callable[[], EngineCall]  # returns the engine function (imports it lazily)
    # kind-specific engine inputs from (params, settings, the job's run directory)
    extra_kwargs: Callable[[Any, Settings, Path], dict[str, Any]]
    digest: Callable[[Any], str]  # sha256 of the result file, from the engine's result


def _generator_inputs(generator: str, settings: Settings) -> dict[str, Any]:
    """A generator uploaded through POST /generators is a file in the data dir."""
    uploaded = uploaded_path(generator, settings.data_dir)
    if uploaded is not None and generator not in registry.generator_names():
        return {"generator_path": uploaded}
    return {}


# -- adapt ---------------------------------------------------------------------------------


def _adaptation_engine() -> EngineCall:
    from worker.engine import run_adaptation  # torch: imported on the first job only

    return run_adaptation


def _adaptation_inputs(params: Any, settings: Settings, root: Path) -> dict[str, Any]:
    inputs = _generator_inputs(params.generator, settings)
    names = (*params.target_images, *params.source_images)
    if names:  # the job's own copies (made when it was created), never the upload pool
        inputs["domain_images"] = {sha: rundir.domain_image_path(root, sha) for sha in names}
    start = root / rundir.START  # a continuation: its parent's resume.pt, linked at creation
    if start.is_file():
        inputs["start_from"] = start
    return inputs


def _checkpoint_digest(result: Any) -> str:
    return str(result.checkpoint_sha256)


# -- invert: a photo into W+ -----------------------------------------------------------------


def _inversion_engine() -> EngineCall:
    from invert.pipeline import run_inversion

    return run_inversion


def _inversion_inputs(params: Any, settings: Settings, root: Path) -> dict[str, Any]:
    """The photo was stored in the job's own folder when the job was created."""
    return {"photo_path": root / rundir.PHOTO, **_generator_inputs(params.generator, settings)}


def _latent_digest(result: Any) -> str:
    return str(result.latent_sha256)


# -- edit: an inversion through an adapted generator -----------------------------------------


def _edit_engine() -> EngineCall:
    from invert.pipeline import run_edit

    return run_edit


def _edit_inputs(params: Any, settings: Settings, root: Path) -> dict[str, Any]:
    latent = storage.job_dir(settings.jobs_dir, params.inversion_id) / rundir.LATENT
    adapted = storage.job_dir(settings.jobs_dir, params.job_id) / rundir.ADAPTED
    if not latent.is_file():
        raise InputError(f"inversion {params.inversion_id} has no code (deleted, or not finished)")
    if not adapted.is_file():
        raise InputError(f"job {params.job_id} has no adapted generator (deleted, or not finished)")
    inputs: dict[str, Any] = {"latent_path": latent, "checkpoint_path": adapted}
    if params.edits:  # the API checked the names and the base (backend/api/routes/directions.py)
        from worker.latent_edits import w_plus_editor

        files = direction_files(direction_names(params.edits), settings.data_dir)
        inputs["edit_w_plus"] = w_plus_editor(params.edits, files=files)
    return inputs


def _image_digest(result: Any) -> str:
    return str(result.image_sha256)


# -- render: seeds, style mixing or a video through a finished job's two generators --------


def _render_engine() -> EngineCall:
    from worker.renders import run_render

    return run_render


def _render_inputs(params: Any, settings: Settings, root: Path) -> dict[str, Any]:
    """The job's adapted.pt; the base generator's name came with the params (the route
    copies it from the job), an uploaded one is a file in the data dir."""
    adapted = storage.job_dir(settings.jobs_dir, params.job_id) / rundir.ADAPTED
    if not adapted.is_file():
        raise InputError(f"job {params.job_id} has no adapted generator (deleted, or not finished)")
    base = _generator_inputs(params.generator, settings) if params.generator else {}
    blend = []  # the blended jobs' adapted.pt, in the params' order (the route checked them)
    for part in params.blend:
        path = storage.job_dir(settings.jobs_dir, part.job_id) / rundir.ADAPTED
        if not path.is_file():
            raise InputError(f"blend job {part.job_id} has no adapted generator (deleted?)")
        blend.append(path)
    sweep = params.edit_sweep if params.mode == "video" else ""
    uploaded = direction_files(direction_names(params.edits, sweep), settings.data_dir)
    return {"checkpoint_path": adapted, **base, "blend_paths": blend, "direction_files": uploaded}


# -- domain: a ready-made adapted generator published as the job's adapted.pt -------------


def _ready_made_engine() -> EngineCall:
    from worker.ready_made import run_ready_made

    return run_ready_made


def _no_inputs(params: Any, settings: Settings, root: Path) -> dict[str, Any]:
    return {}


RUNNERS: dict[str, Runner] = {
    "adapt": Runner(_adaptation_engine, _adaptation_inputs, _checkpoint_digest),
    "invert": Runner(_inversion_engine, _inversion_inputs, _latent_digest),
    "edit": Runner(_edit_engine, _edit_inputs, _image_digest),
    "render": Runner(_render_engine, _render_inputs, _image_digest),
    "domain": Runner(_ready_made_engine, _no_inputs, _checkpoint_digest),
}


def runner_for(kind: str) -> Runner:
    try:
        return RUNNERS[kind]
    except KeyError:
        raise LookupError(f"this worker cannot run jobs of kind {kind!r}") from None


def published_samples(result: Any) -> tuple[Path, ...]:
    return tuple(getattr(result, "samples", ()))
