"""How a failed attempt is named: the job's error code and message for an exception out of an
engine or out of publishing its files (worker/attempts.py records them).

The codes are the API's `error_code`: a client tells from them what to change. Faults of the
data directory are named by what went wrong with it (jobs/disk.py: full, not writable, the
job's folder removed), not by the writer's message: no server paths, no file names.

A failure has two texts (`describe_failure`): the `message` the page shows, in what its
user can do there, and, where the exception says more than that, the `details` for the
operator (the API's `error.details`, shown collapsed; the worker's log has the full text).
A model that is not here and cannot be downloaded is the case that has both: "this server
has no copy of generator 'ffhq-1024' and cannot download it; pick another generator ..."
for the page, the registry's how-to (variables, commands) for the operator.
"""

from __future__ import annotations

import errno
import gc
import re
import sys
from dataclasses import dataclass

from invert import weights
from jobs import disk
from jobs.settings import Settings
from nada.catalog import RANDOM_TAG, split_clip_name
from nada.errors import InputError, ParamError
from stylegan2 import domains, registry
from stylegan2.download import ChecksumError, DownloadError
from stylegan2.model_files import cache_dir

TIMEOUT = "timeout"
OUT_OF_MEMORY = "out_of_memory"
INVALID_PARAMS = "invalid_params"
INVALID_INPUT = "invalid_input"
MODEL_UNAVAILABLE = "model_unavailable"
IO = "io"
# Codes the exception itself decides: never re-read as a fault of the data directory.
SELF_EXPLAINED = (INVALID_PARAMS, INVALID_INPUT, MODEL_UNAVAILABLE, OUT_OF_MEMORY)
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class JobFilesRemoved(OSError):
    """The job's run directory was removed while the attempt ran."""


def error_code(exc: BaseException) -> str:
    """The job's error code for an exception out of the engine or the file publishing."""
    name = type(exc).__name__
    if isinstance(exc, ParamError):
        return INVALID_PARAMS
    if isinstance(exc, InputError):
        return INVALID_INPUT
    # torch.cuda.OutOfMemoryError, or a RuntimeError from older torch / other allocators
    if "OutOfMemory" in name or "out of memory" in str(exc).lower():
        return OUT_OF_MEMORY
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return IO
    if isinstance(exc, FileNotFoundError):
        return "missing_file"
    if isinstance(exc, DownloadError):  # offline, no URL, a bad checksum: says how to fix it
        return MODEL_UNAVAILABLE
    return "engine_error"


# An absolute POSIX path: after a space, a quote, '(' or '=' (so a URL's path is left alone).
_SERVER_PATH = re.compile(r"(?<![\w.:/~-])(?:~|/)[^\s'\"(),;`]*[^\s'\"(),;`.]")
SERVER_PATH = "<server path>"


@dataclass(frozen=True)
class FailureText:
    message: str  # for the user, in the page's terms
    details: str | None  # for the operator (no server paths); None: the message says it all


def describe_failure(exc: BaseException) -> FailureText:
    """The two texts of a failed attempt: the exception's own text as the message, except
    for a model file that cannot be had (DownloadError), whose message says what the user
    can pick instead and whose own text (where to place the file, the variable, the
    command, server paths hidden) becomes the details. The log keeps the full text
    (worker/attempts.py logs `exc`)."""
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, DownloadError):
        return FailureText(text, None)
    cache = re.escape(str(cache_dir()))  # first: a cache folder whose name has spaces
    details = re.sub(cache + r"[^\s'\"(),;`]*", SERVER_PATH, text)
    details = _SERVER_PATH.sub(SERVER_PATH, details)
    return FailureText(model_unavailable_message(exc), details)


def model_unavailable_message(exc: DownloadError) -> str:
    """What the page says of a model file the job could not have, from the entry it names
    (`DownloadError.model`, on the exception or the one it wraps)."""
    model = _model_of(exc)
    what, instead = _what_and_instead(model)
    if isinstance(exc, ChecksumError):
        return (
            f"this server's copy of {what} is damaged or not the published file; ask the "
            "operator to replace it"
        )
    return f"this server has no copy of {what} and cannot download it; {instead}"


def _model_of(exc: BaseException | None) -> str | None:
    seen = 0
    while exc is not None and seen < 8:  # a wrapper (the face detector's) keeps the cause
        model = getattr(exc, "model", None)
        if model:
            return str(model)
        exc, seen = exc.__cause__, seen + 1
    return None


def _what_and_instead(model: str | None) -> tuple[str, str]:
    """(the model in a user's words, what the user can do without it)."""
    ask = "or ask the operator to install it"
    if model is None:
        return "a model file this job needs", "ask the operator to install it"
    if model in registry.generator_names():
        return (
            f"generator {model!r}",
            f"pick another generator (those marked cached need no download), {ask}",
        )
    if model in weights.WEIGHTS.names():
        return f"{weights.WHAT.get(model, 'model file')} ({model})", weights.INSTEAD.get(
            model, "ask the operator to install it"
        )
    if model in domains.domain_names():
        return f"ready-made domain {model!r}", f"pick another ready-made domain, {ask}"
    if ":" in model:
        arch, _ = split_clip_name(model)
        return (
            f"CLIP model {model!r}",
            "pick another CLIP model (those marked cached need no download; "
            f"'{arch}:{RANDOM_TAG}' has random weights, for trying the service out), {ask}",
        )
    return repr(model), "ask the operator to install it"


def io_fault(exc: BaseException, settings: Settings, *, folder_removed: bool) -> str | None:
    """The message of a failure the data directory caused (full, not writable, the job's
    folder removed: `folder_removed` says whether it is gone now), else None."""
    if isinstance(exc, JobFilesRemoved):
        return disk.FOLDER_REMOVED
    fault = disk.fault_of(exc, settings.data_dir)
    if fault is None and folder_removed:
        return disk.FOLDER_REMOVED
    if fault is None:  # a writer that hid the OSError: look at the directory itself
        state = disk.check(settings, fresh=True)
        fault = None if state == "ok" else state
    if fault is None:
        return None
    return f"{disk.REASONS[fault]}; the job's files could not be written"


def release_accelerator_memory() -> None:
    """After an out-of-memory failure: collect the failed attempt's tensors (its frames
    are gone once the exception is handled) and give cached CUDA blocks back, so the next
    job on this worker starts from a clean allocator."""
    gc.collect()
    torch = sys.modules.get("torch")  # never import torch here (tests, CPU-only API)
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
