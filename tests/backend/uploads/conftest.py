"""Fixtures of the generator-upload tests: the route never touches the job database, so
these run on SQLite only (the `db_url` of tests/backend/conftest.py, narrowed), and one
small valid generator file serves them all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobs.settings import Settings


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    from jobs.db.session import get_engine, migrate

    url = f"sqlite:///{tmp_path / 'nada.sqlite'}"
    migrate(url)
    yield url
    get_engine(url).dispose()


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A valid 8-px generator checkpoint, as bytes."""
    from stylegan2.checkpoint import random_generator, save_generator

    loaded = random_generator(8)
    path = tmp_path_factory.mktemp("gen") / "good.pt"
    save_generator(path, loaded.generator, loaded.latent_avg, {"note": "test"})
    return path.read_bytes()


@pytest.fixture
def leftovers(settings: Settings) -> Callable[[], list[str]]:
    """Lists every file under the upload folders that is not a published generator: a
    refused or broken upload must leave none."""

    def find() -> list[str]:
        found = []
        for folder in ("generators", "uploads-incoming"):
            root = settings.data_dir / folder
            for path in root.rglob("*") if root.is_dir() else []:
                if not (folder == "generators" and path.suffix in (".pt", ".json")):
                    found.append(str(path))
        return found

    return find
