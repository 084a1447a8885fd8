"""`nada serve` and `nada worker` as a user runs them (argument handling, refusals)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli import serve as serve_cli
from jobs.settings import Settings
from nada.errors import CLIError

ROOT = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nada")
    subparsers = parser.add_subparsers(dest="command")
    serve_cli.register(subparsers)
    from cli.worker import register

    register(subparsers)
    return parser


def test_serve_and_worker_options() -> None:
    args = _parser().parse_args(["serve", "--port", "9001", "--no-worker", "--data-dir", "d"])
    assert (args.port, args.no_worker, args.data_dir, args.host) == (9001, True, Path("d"), None)
    args = _parser().parse_args(["worker", "--device", "cuda:1"])
    assert args.device == "cuda:1" and args.func.__name__ == "run_worker"


def test_serve_refuses_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CLIError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve_cli._check_port("127.0.0.1", port)


def test_worker_refuses_a_bad_device() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.worker", "--device", "gpu0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--device must be auto, cpu, mps, cuda or cuda:N (got 'gpu0')" in result.stderr


def test_settings_from_the_environment(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NADA_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("NADA_DATABASE_URL", "postgresql://u:p@db/nada")
    monkeypatch.setenv("NADA_FRONTEND_DIR", "")
    s = Settings()
    assert s.db_url == "postgresql+psycopg://u:p@db/nada"
    assert s.broker == f"sqla+sqlite:///{tmp_path / 'd' / 'broker.sqlite'}"
    assert s.frontend_dir is None and s.host == "127.0.0.1" and s.port == 8000
    monkeypatch.setenv("NADA_DATABASE_URL", "")
    assert Settings().db_url == f"sqlite:///{tmp_path / 'd' / 'nada.sqlite'}"


@pytest.mark.slow
def test_the_local_worker_does_not_outlive_nada_serve(tmp_path: Path) -> None:
    """`nada serve` starts its worker with --parent-pid: parent killed, no orphan."""
    script = (
        f"{sys.executable} -m cli.worker --device cpu --parent-pid $$ "
        f"> {tmp_path / 'worker.log'} 2>&1 & echo $!; sleep 1"
    )
    env = {**os.environ, "NADA_DATA_DIR": str(tmp_path / "data")}
    for key in ("NADA_DATABASE_URL", "NADA_BROKER_URL"):
        env.pop(key, None)
    out = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            break
        time.sleep(0.2)
    else:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, 9)
            raise AssertionError((tmp_path / "worker.log").read_text()[-2000:])


def test_the_local_worker_runs_niced_and_leaves_a_core_to_the_api(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import sys
    import time

    from cli.serve import LocalWorker, local_worker_env
    from jobs.settings import Settings

    settings = Settings(data_dir=tmp_path)
    env = local_worker_env(settings, {"PATH": os.environ["PATH"]})
    assert env["NADA_WORKER_THREADS"] == str(max(1, (os.cpu_count() or 2) - 1))
    assert local_worker_env(settings, {"NADA_WORKER_THREADS": "3"})["NADA_WORKER_THREADS"] == "3"
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert local_worker_env(settings, {"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"
    assert Settings(data_dir=tmp_path, worker_threads=2).worker_threads == 2

    base = os.getpriority(os.PRIO_PROCESS, 0)
    child = LocalWorker(
        None, nice=7, env=env, argv=[sys.executable, "-c", "import time; time.sleep(60)"]
    )
    child.start()
    try:
        assert child.process is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            niceness = os.getpriority(os.PRIO_PROCESS, child.process.pid)
            if niceness == min(base + 7, 19):
                break
            time.sleep(0.05)
        assert niceness == min(base + 7, 19)
        with open(f"/proc/{child.process.pid}/environ", "rb") as f:
            assert b"NADA_WORKER_THREADS=" in f.read()
    finally:
        child.stop(timeout=5)


@pytest.mark.parametrize("euid", [0, 1000])
def test_a_root_worker_child_leaves_out_celerys_superuser_warning_only(tmp_path, euid) -> None:  # type: ignore[no-untyped-def]
    """Run as root, each local worker child printed Celery's "running the worker with
    superuser privileges" (twice with the fast lane's worker): about pickled messages, which
    this queue never accepts. The child's environment leaves out that warning alone (any
    other stays); `nada serve` says once that it runs as root; not root: nothing changes."""
    import os
    import subprocess
    import sys

    from cli.serve import local_worker_env, run_as_root_notice
    from jobs.settings import Settings

    env = local_worker_env(
        Settings(data_dir=tmp_path),
        {"PATH": os.environ["PATH"], "PYTHONWARNINGS": "error::ResourceWarning"},
        euid=euid,
    )
    code = (
        "import warnings; from celery.platforms import check_privileges; "
        "check_privileges(['json']); warnings.warn('another warning')"
    )
    err = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stderr
    assert "another warning" in err
    if euid == 0 and os.geteuid() == 0:  # Celery warns only when the process is root
        assert "superuser privileges" not in err
        assert "error::ResourceWarning" in env["PYTHONWARNINGS"]
    notice = run_as_root_notice(euid)
    assert (notice is not None) == (euid == 0)
    if euid != 0:
        assert env["PYTHONWARNINGS"] == "error::ResourceWarning"
