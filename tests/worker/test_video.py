"""worker/video.py: a video appears whole when its block ends, and not at all if it fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worker.video import count_frames, open_video


def _frames(n: int) -> list[np.ndarray]:
    return [np.full((8, 16, 3), 40 * i, dtype=np.uint8) for i in range(n)]


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_the_video_appears_when_the_block_ends(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"render.{fmt}"
    with open_video(path, fps=4, format=fmt) as writer:
        for frame in _frames(3):
            writer.append(frame)
        assert not path.exists()  # a reader never sees a video being written
    assert count_frames(path) == 3
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_a_failed_video_leaves_nothing(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"render.{fmt}"
    with pytest.raises(KeyboardInterrupt), open_video(path, fps=4, format=fmt) as writer:
        writer.append(_frames(1)[0])
        raise KeyboardInterrupt  # a cancel, a lost lease: anything that stops the render
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_a_video_without_frames_is_refused(tmp_path: Path, fmt: str) -> None:
    with (
        pytest.raises(ValueError, match="at least one frame"),
        open_video(tmp_path / f"v.{fmt}", fps=4, format=fmt),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_format_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mp4, gif"), open_video(tmp_path / "v.avi", 4, "avi"):
        pass
