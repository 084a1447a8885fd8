"""Video files from frames: MP4 (H.264 through the ffmpeg binary that imageio-ffmpeg
bundles, so no system ffmpeg is needed) and GIF (Pillow).

Frames arrive one at a time (a long video never sits in memory as RGB) and the file appears
by rename when it is closed: a reader sees a whole video or none, and a canceled render
leaves nothing behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

FORMATS = ("mp4", "gif")


class VideoWriter(Protocol):
    path: Path

    def append(self, frame: np.ndarray) -> None: ...  # uint8 [H, W, 3], the same size each

    def close(self) -> Path: ...  # finish and move into place

    def abort(self) -> None: ...  # remove what was written


def _partial(path: Path) -> Path:
    """A temporary name beside `path` that keeps its suffix (ffmpeg picks the container by it)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


class Mp4Writer:
    """H.264 in yuv420p (what every browser plays), moov atom first (+faststart: playback
    starts before the whole file has arrived)."""

    def __init__(self, path: Path, fps: int):
        import imageio.v2 as imageio  # the ffmpeg plugin: imageio-ffmpeg's bundled binary

        self.path = Path(path)
        self._tmp = _partial(self.path)
        self._writer: Any = imageio.get_writer(
            self._tmp,
            format="FFMPEG",  # type: ignore[arg-type]
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            quality=8,
            macro_block_size=2,  # yuv420p needs even sides; frames are never resized
            ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart"],
        )

    def append(self, frame: np.ndarray) -> None:
        self._writer.append_data(frame)

    def close(self) -> Path:
        self._writer.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._tmp.unlink(missing_ok=True)


class GifWriter:
    """Each frame quantised to its own 256-colour palette as it arrives; written on close.
    GIF frame times are whole hundredths of a second, and browsers slow down frames shorter
    than 0.02 s: above 50 fps a GIF plays at 50."""

    def __init__(self, path: Path, fps: int):
        self.path = Path(path)
        self._tmp = _partial(self.path)
        self._duration_ms = 10 * max(2, round(100 / fps))  # whole centiseconds, >= 0.02 s
        self._frames: list[Image.Image] = []

    def append(self, frame: np.ndarray) -> None:
        self._frames.append(Image.fromarray(frame).quantize(256))

    def close(self) -> Path:
        if not self._frames:
            raise ValueError("a GIF needs at least one frame")
        first, *rest = self._frames
        first.save(
            self._tmp,
            format="GIF",
            save_all=True,
            append_images=rest,
            duration=self._duration_ms,
            loop=0,  # forever
        )
        self._frames = []
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._frames = []
        self._tmp.unlink(missing_ok=True)


def open_video(path: Path, fps: int, format: str) -> VideoWriter:
    if format == "mp4":
        return Mp4Writer(path, fps)
    if format == "gif":
        return GifWriter(path, fps)
    raise ValueError(f"video format must be one of {', '.join(FORMATS)} (got {format!r})")


def count_frames(path: Path) -> int:
    """The frames a video file holds, read back (ffmpeg decodes an MP4; Pillow a GIF)."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1))
    import imageio_ffmpeg  # type: ignore[import-untyped]

    frames, _seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    return int(frames)
