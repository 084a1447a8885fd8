"""The engines a job runs and the Celery shell that runs them on GPU workers.

- the adaptation engine (StyleGAN-NADA: `engine.py`, with its math in small modules such as
  `clip_loss.py` and `layers.py`) and the render engine (`renders.py`, `video.py`);
- `runners.py`: each kind's engine call (adapt and render from here, invert and edit from
  `invert.pipeline`);
- the attempt machinery (`attempts.py`, with `attempt_recorder.py` and `failures.py`):
  claims a job, runs its kind's engine with progress and cancel callbacks, records the
  outcome in the job system (`jobs/`);
- the Celery shell (`celery_app.py`, `tasks.py`): a task that calls `attempts.run_job`.

The command line that starts a worker (`nada worker`) lives in `cli/`, beside the other
commands. Importing this package imports nothing heavy: the engines pull in torch and
open_clip, `worker.tasks` pulls in Celery; callers import the submodule they need.
"""
