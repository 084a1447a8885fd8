"""The `nada` entry point as a user runs it (`python -m cli` is the console script's module)."""

import subprocess
import sys


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_command():
    result = run("--help")
    assert result.returncode == 0
    for command in (
        "models",
        "adapt",
        "sweep",
        "generate",
        "video",
        "invert",
        "weights",
        "serve",
        "worker",
    ):
        assert command in result.stdout


def test_no_command_prints_help_and_fails():
    result = run()
    assert result.returncode == 2
    assert "usage" in result.stdout


def test_version():
    result = run("--version")
    assert result.returncode == 0 and "nada" in result.stdout
