"""How a failed attempt is named: the job's error code and message for an exception out of an
engine or out of publishing its files (worker/attempts.py records them).

The codes are the API's `error_code`: a client tells from them what to change. Faults of the
data directory are named by what went wrong with it (jobs/disk.py: full, not writable, the
job's folder removed), not by the writer's message: no server paths, no file names.
"""

from __future__ import annotations

import errno
import gc
import re
import sys

from jobs import disk
from jobs.settings import Settings
from nada.errors import InputError, ParamError
from stylegan2.download import DownloadError
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


def failure_message(exc: BaseException) -> str:
    """The message a client sees for a failed attempt: the exception's own text, except
    that a model file's refusal (DownloadError: a cache path, where to place the file) names
    no server paths. The log keeps the full text (worker/attempts.py logs `exc`)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, DownloadError):
        cache = re.escape(str(cache_dir()))  # first: a cache folder whose name has spaces
        message = re.sub(cache + r"[^\s'\"(),;`]*", SERVER_PATH, message)
        message = _SERVER_PATH.sub(SERVER_PATH, message)
    return message


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
