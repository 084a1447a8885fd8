"""Settings read from the environment: a bad one is refused by name and its value is never
repeated (NADA_API_TOKENS holds every user's secret), by the library and by both commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.settings import SettingsError, get_settings
from jobs.tokens import parse_tokens

BOB = "bob-s-valid-token-0123456789"  # a real token of another user, in the same variable
MALFORMED = f"alice:short,bob:{BOB}"  # alice's token is too short


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.setenv("NADA_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_a_malformed_token_list_is_refused_without_quoting_it(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("NADA_API_TOKENS", MALFORMED)
    with pytest.raises(SettingsError) as refused:
        get_settings()
    message = str(refused.value)
    assert "NADA_API_TOKENS" in message and "'alice'" in message
    assert BOB not in message and "short," not in message


def test_other_bad_settings_name_the_variable_not_the_value(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("NADA_LEASE_SECONDS", "not-a-number-xyz")
    with pytest.raises(SettingsError, match="NADA_LEASE_SECONDS") as refused:
        get_settings()
    assert "not-a-number-xyz" not in str(refused.value)


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(ValueError, match="empty name"):
        parse_tokens(f":{BOB}")
    with pytest.raises(ValueError, match="entry number 2 has an empty name"):
        parse_tokens(f"alice:{BOB}x, :{BOB}")


@pytest.mark.parametrize("command", [["serve", "--no-worker"], ["worker", "--device", "cpu"]])
def test_the_commands_exit_2_without_echoing_tokens(tmp_path: Path, command: list[str]) -> None:
    env = {**os.environ, "NADA_DATA_DIR": str(tmp_path / "data"), "NADA_API_TOKENS": MALFORMED}
    result = subprocess.run(
        [sys.executable, "-m", "cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "NADA_API_TOKENS" in result.stderr
    assert BOB not in result.stdout + result.stderr


def test_retention_settings_are_checked_by_name(environ: pytest.MonkeyPatch) -> None:
    for variable, bad in [("NADA_RETAIN_RESULTS_HOURS", "-1"), ("NADA_RETAIN_RESUMABLE_HOURS", "inf"),
                          ("NADA_DISK_QUOTA_MB", "lots"), ("NADA_GC_INTERVAL_SECONDS", "0")]:  # fmt: skip
        environ.setenv(variable, bad)
        get_settings.cache_clear()
        with pytest.raises(SettingsError, match=variable):
            get_settings()
        environ.delenv(variable)
    environ.setenv("NADA_RETAIN_RESULTS_HOURS", "0")  # 0 and empty: kept for ever
    environ.setenv("NADA_RETAIN_RESUMABLE_HOURS", "")
    environ.setenv("NADA_DISK_QUOTA_MB", "500")
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.retention.keeps_everything and settings.disk_quota_bytes == 500 * 10**6
