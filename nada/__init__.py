"""The stdlib-only bottom of the project: what every other package may share.

Parameter declarations (`params.py`'s `param()` and each kind's parameters declared with it),
the errors that name the user's knob (`errors.py`), the run-directory layout and its one
atomic writer (`rundir.py`), the CLIP catalog the service offers (`catalog.py`), the id
pattern (`ids.py`), the progress contract (`events.py`) and the prompt templates.

Nothing here imports anything outside the standard library (tests/test_architecture.py
checks it), so the API process, the workers and the command line (`cli/`) can all use it.
"""

__version__ = "0.1.0"
