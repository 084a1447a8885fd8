"""Fixtures of the command-line tests: the commands run the real engines on tiny models, so
they share the photo tests' random e4e and one-thread setting and the generator tests' local
file server (for downloads)."""

from tests.invert.conftest import e4e_64, one_thread
from tests.stylegan2.conftest import file_server

__all__ = ["e4e_64", "file_server", "one_thread"]
