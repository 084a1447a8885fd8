"""Fixtures for the HTTP service tests; the databases, Redis, settings and the recording
queue they build on are tests/conftest.py's."""

from __future__ import annotations

import pytest

from jobs.settings import Settings
from tests.conftest import RecordingQueue


@pytest.fixture
def client(settings: Settings, queue: RecordingQueue):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from backend.main import create_app

    with TestClient(create_app(settings, queue=queue)) as test_client:
        yield test_client
