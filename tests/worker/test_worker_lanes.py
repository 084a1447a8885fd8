"""`nada worker --lanes`: which queues a worker takes jobs from."""

from __future__ import annotations

import pytest

from cli.worker import celery_argv, main


def test_the_lanes_become_celery_queues() -> None:
    argv = celery_argv(queues=["nada", "nada-fast"], hostname="w@h", loglevel="INFO")
    assert "--queues=nada,nada-fast" in argv and "--concurrency=1" in argv


@pytest.mark.parametrize("lanes", ["", "slow", "train,gpu"])
def test_an_unknown_lane_is_refused(lanes: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--lanes", lanes, "--device", "cpu"])
    assert exit_info.value.code == 2
    assert "--lanes must name train, fast or both" in capsys.readouterr().err
