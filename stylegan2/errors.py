"""The generator library's error type, in a module of its own so that every reader (the .pt
loader, the NVIDIA pickle reader, the converters) can raise it without importing another."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A file that is not a usable generator checkpoint; the message says what is wrong."""
