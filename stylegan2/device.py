"""Which device a run uses and how the process is set up to run on it: one rule for the
engines (adapt, invert, edit, render), the photo pipeline, the CLI and the worker.

`resolve_device` picks the device; `prepare` puts the process's torch settings into the one
state every engine runs with. Each engine calls `prepare()` on entry, so in a shared worker
an inversion or a render runs exactly as it would after an adaptation, whichever job came
first (tests/worker/test_device_setup.py checks it in fresh processes).
"""

from __future__ import annotations

import ctypes
import sys

import torch

__all__ = ["HEAP_RETAIN_BYTES", "prepare", "resolve_device", "retain_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
HEAP_RETAIN_BYTES = 1 << 30  # freed memory kept for reuse: more than any tensor of a step


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything torch accepts otherwise.

    Raises:
        ValueError: not a device name, or CUDA asked for where there is none.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N (got {device!r})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    return resolved


def prepare(*, threads: int | None = None) -> None:
    """Set this process up the way every engine runs: idempotent, a few flag writes, so
    every engine call makes it on entry.

    - TF32 matmuls and convolutions (10-bit mantissa products, fp32 accumulation: far more
      precise than the generator's and CLIP's own error; float32 matmul precision 'high'),
      and cuDNN autotuning (every generator pass of a run has the same shapes). Weights and
      activations stay fp32: StyleGAN2's demodulation and skip sums are where half
      precision hurts. (CLIP's precision: worker.clip_models.ClipModel.autocast.) These
      are process-wide flags that only CUDA's cuBLAS and cuDNN read: set whatever the
      device, so a CPU run computes exactly as before and the process is in one state
      whichever device or engine came first. Setting them initialises no CUDA, so a worker
      may call this before its pool forks.
    - glibc's malloc keeps freed blocks for reuse (`retain_freed_memory`).
    - `threads`: torch's CPU threads (the worker's configured share); None leaves the count
      to whoever owns the process (the CLI, a test, torch's default).
    """
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    retain_freed_memory()
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def retain_freed_memory(limit: int = HEAP_RETAIN_BYTES) -> bool:
    """Let glibc's malloc keep freed blocks of up to `limit` bytes for reuse instead of
    returning them to the kernel. True if the setting took (glibc only).

    By default glibc serves every block above 32 MB (an activation at 128 px and up) with
    its own mmap and unmaps it when freed, so each of a step's hundreds of such allocations
    page-faults its memory in again, zero-filled by the kernel: at 256 px a fifth of a step's
    CPU time went to the kernel (sys time) on one thread, more with two (each unmap also
    interrupts the other thread's core to flush its TLB). Kept blocks are reused by the next
    allocation instead. The process's peak memory barely moves (the blocks were in use at
    the peak anyway); between jobs a worker keeps up to `limit` of freed heap.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...): leave its defaults alone
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    limit = min(limit, 2**31 - 1)
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))
