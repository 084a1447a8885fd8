"""Video files from frames: MP4 (H.264 through the ffmpeg binary that imageio-ffmpeg
bundles, so no system ffmpeg is needed) and GIF (Pillow).

Frames arrive one at a time (a long video never sits in memory as RGB). The encoder writes
to a temporary file of `nada.rundir.atomic_output`, which renames it into place when the
`open_video` block ends: a reader sees a whole video or none, and a canceled render leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from nada.rundir import atomic_output

FORMATS = ("mp4", "gif")


class VideoWriter(Protocol):
    def append(self, frame: np.ndarray) -> None: ...  # uint8 [H, W, 3], the same size each


class _Encoder(VideoWriter, Protocol):
    def finish(self) -> None: ...  # write what is left; the file is complete

    def discard(self) -> None: ...  # stop without finishing (the file is removed after)


class Mp4Writer:
    """H.264 in yuv420p (what every browser plays), moov atom first (+faststart: playback
    starts before the whole file has arrived)."""

    def __init__(self, path: Path, fps: int):
        import imageio.v2 as imageio  # the ffmpeg plugin: imageio-ffmpeg's bundled binary

        self._writer: Any = imageio.get_writer(
            path,  # ffmpeg picks the container by its suffix
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
        self._frames = 0

    def append(self, frame: np.ndarray) -> None:
        self._writer.append_data(frame)
        self._frames += 1

    def finish(self) -> None:
        self._writer.close()
        if not self._frames:  # ffmpeg never started: the file is empty, not a video
            raise ValueError("a video needs at least one frame")

    def discard(self) -> None:
        self._writer.close()  # ends the ffmpeg process


class GifWriter:
    """Each frame quantised to its own 256-colour palette as it arrives; written on finish.
    GIF frame times are whole hundredths of a second, and browsers slow down frames shorter
    than 0.02 s: above 50 fps a GIF plays at 50."""

    def __init__(self, path: Path, fps: int):
        self._path = Path(path)
        self._duration_ms = 10 * max(2, round(100 / fps))  # whole centiseconds, >= 0.02 s
        self._frames: list[Image.Image] = []

    def append(self, frame: np.ndarray) -> None:
        self._frames.append(Image.fromarray(frame).quantize(256))

    def finish(self) -> None:
        if not self._frames:
            raise ValueError("a GIF needs at least one frame")
        first, *rest = self._frames
        first.save(
            self._path,
            format="GIF",
            save_all=True,
            append_images=rest,
            duration=self._duration_ms,
            loop=0,  # forever
        )
        self._frames = []

    def discard(self) -> None:
        self._frames = []


@contextlib.contextmanager
def open_video(path: Path, fps: int, format: str) -> Iterator[VideoWriter]:
    """A writer of frames for `path` (`format` 'mp4' or 'gif'); the video is at `path` once
    the block ends without error, and nowhere if it raises (a cancel, say)."""
    encoders: dict[str, type[Mp4Writer | GifWriter]] = {"mp4": Mp4Writer, "gif": GifWriter}
    if format not in encoders:
        raise ValueError(f"video format must be one of {', '.join(FORMATS)} (got {format!r})")
    with atomic_output(path) as tmp:
        encoder: _Encoder = encoders[format](tmp, fps)
        try:
            yield encoder
        except BaseException:
            encoder.discard()
            raise
        encoder.finish()


def count_frames(path: Path) -> int:
    """The frames a video file holds, read back (ffmpeg decodes an MP4; Pillow a GIF)."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1))
    import imageio_ffmpeg  # type: ignore[import-untyped]

    frames, _seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    return int(frames)
