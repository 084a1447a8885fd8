"""Fixtures shared by the photo pipeline's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models: OpenMP hand-offs between threads on shared cores cost more than the
    work (as in tests/worker/conftest.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def e4e_64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random e4e for 64-px generators (10 styles), saved in e4e's published layout."""
    from invert.e4e_weights import random_e4e, save_e4e_checkpoint

    path = tmp_path_factory.mktemp("e4e") / "e4e_64.pt"
    save_e4e_checkpoint(random_e4e(64, seed=0), path)
    return path
