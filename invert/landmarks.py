"""Find a face and its 68 landmarks in a photo, and FFHQ-align it.

`FanDetector` adapts the `face-alignment` package (Adrian Bulat, BSD-3-Clause): its S3FD
face detector and its 2DFAN-4 landmark network (the 68-point iBUG layout FFHQ's recipe
uses). The package downloads its model files itself, into torch.hub's cache, from its own
URL table; here they are two entries of `invert.weights` instead (`face-s3fd`,
`face-fan2d`, the same URLs and file names) so that they share the project's cache,
checksums, progress bar, offline message and `NADA_WEIGHTS_*` overrides.

How the local files reach face-alignment (face-alignment >= 1.5, where 2DFAN-4 is a plain
state dict; 1.4 shipped TorchScript archives from other URLs):

- S3FD through the detector's public `path_to_detector` argument
  (`FaceAlignment(..., face_detector_kwargs={"path_to_detector": path})`).
- 2DFAN-4 has no such argument: `FaceAlignment._load_native` builds `FAN(4)` and loads the
  state dict it downloads. `_LocalFaceAlignment` overrides that one method to load the
  resolved file the same way. It is a private method, so `_require_version` checks the
  installed version and that the method is still there, and fails with a clear message
  (never a silent download) when face-alignment changes under it. The alternative,
  rebuilding the package's crop / heatmap / flip pipeline here, would copy far more of its
  internals than this one override relies on.

`torch.compile` (on by default in face-alignment, with a cache under ~/.cache) is off.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import PIL.Image

from invert.align import AlignedFace, align_face
from invert.weights import FAN_2D, S3FD, WeightFile, resolve
from nada.errors import InputError
from stylegan2.download import DownloadError, sha256_file

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


_MIN_VERSION = (1, 5)


class DetectorUnavailable(DownloadError):
    """The face detector's two weight files are not here and could not be fetched. An
    already aligned crop (`--no-align`, `align: false`) needs no detector, so callers can
    say so; the message is the download's (where to place the files by hand)."""


class NoFaceError(InputError):
    """The detector found no face in the photo."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "no face found in the photo; use a photo with one clearly visible face, or "
            "pass --no-align / align: false for an already aligned crop"
        )


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face."""

    landmarks: np.ndarray  # [68, 2] float64, (x, y) photo pixels, iBUG order
    box: tuple[float, float, float, float]  # (x0, y0, x1, y1) photo pixels
    score: float  # detector confidence, 0..1

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)


class LandmarkDetector(Protocol):
    """Anything that finds faces with 68 iBUG landmarks in a photo."""

    def detect(self, image: PIL.Image.Image) -> list[Face]: ...


def choose_face(faces: list[Face]) -> tuple[Face, str | None]:
    """The face with the largest box, and a note for the user when there was a choice.

    Raises:
        NoFaceError: `faces` is empty.
    """
    if not faces:
        raise NoFaceError()
    chosen = max(faces, key=lambda face: face.area)
    note = f"{len(faces)} faces found; using the largest" if len(faces) > 1 else None
    return chosen, note


def align_photo(
    image: PIL.Image.Image,
    output_size: int,
    detector: LandmarkDetector,
    *,
    transform_size: int | None = None,
) -> tuple[AlignedFace, str | None]:
    """Detect the faces, keep the largest, FFHQ-align it: (aligned face, note or None).

    Raises:
        NoFaceError: no face in the photo.
        DownloadError: the detector's model files are missing and cannot be fetched.
    """
    face, note = choose_face(detector.detect(image))
    aligned = align_face(image, face.landmarks, output_size, transform_size=transform_size)
    return aligned, note


# --- face-alignment -------------------------------------------------------------------------


def _require_version() -> None:
    import face_alignment
    from face_alignment.api import FaceAlignment

    version = getattr(face_alignment, "__version__", "0")
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < _MIN_VERSION or not hasattr(FaceAlignment, "_load_native"):
        raise RuntimeError(
            f"face-alignment {version} is not supported: the landmark network loads through "
            "FaceAlignment._load_native of face-alignment 1.5; install face-alignment>=1.5 "
            "(pip install 'face-alignment>=1.5,<2')"
        )


def _check_hash_prefix(path: Path, entry: WeightFile) -> None:
    """Warn when a file's sha256 does not start with the prefix in its published name."""
    prefix = entry.filename.split("-", 1)[-1].split(".", 1)[0]
    digest = sha256_file(path)
    if not digest.startswith(prefix):
        log.warning(
            "%s: %s has sha256 %s, not starting with %s as the published file name says; "
            "it may be another version of the model",
            entry.name,
            path,
            digest,
            prefix,
        )


def _build_face_alignment(s3fd_path: str, fan_path: str, device: str) -> Any:
    """face-alignment's 2D pipeline over local files (see the module docstring)."""
    import torch
    from face_alignment.api import FaceAlignment, LandmarksType
    from face_alignment.models import FAN

    class _LocalFaceAlignment(FaceAlignment):  # type: ignore[misc]
        def _load_native(
            self, network_name: str, network_size: int, device: str, dtype: Any
        ) -> Any:
            if network_name != "2DFAN-4":
                raise RuntimeError(f"only the 2D landmark network is local (asked {network_name})")
            net = FAN(network_size)
            state = torch.load(fan_path, map_location=device, weights_only=True)
            net.load_state_dict(state)
            net.to(device, dtype=dtype)
            net.eval()
            return net

    benchmark = torch.backends.cudnn.benchmark  # face-alignment turns it on for CUDA
    try:
        return _LocalFaceAlignment(
            LandmarksType.TWO_D,
            device=device,
            flip_input=True,  # average with the mirrored photo's prediction (its default)
            face_detector="sfd",
            face_detector_kwargs={"path_to_detector": s3fd_path},
            compile=False,
        )
    finally:
        torch.backends.cudnn.benchmark = benchmark  # a process-wide flag: not ours to change


def _to_photo(coords: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Pixel coordinates [..., 2] in a photo downscaled by `factor` ([2]: x, y) -> in the
    photo (pixel centres scale about -0.5)."""
    return (coords + 0.5) * factor - 0.5


class FanDetector:
    """S3FD + 2DFAN-4 from face-alignment, with weights from `invert.weights`.

    The networks load on the first `detect` (so constructing one is free and a missing file
    surfaces where it is needed); `stylegan2.download.DownloadError` propagates with its message
    naming the file and the `NADA_WEIGHTS_FACE_S3FD` / `NADA_WEIGHTS_FACE_FAN2D` override.

    Example:
        >>> detector = FanDetector("cuda")
        >>> aligned, note = align_photo(photo, 1024, detector)
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",  # where the networks run: 'cpu', 'cuda:1', 'mps'
        *,
        max_side: int | None = 1280,  # photos with a longer side (px) are downscaled for
        #   detection: S3FD's time and memory grow with the pixels, while FAN reads the
        #   landmarks off a 64 x 64 heatmap of the face box, so they lose nothing as long as
        #   the face stays over ~256 px; None: detect at full size
    ) -> None:
        if max_side is not None and max_side < 64:
            raise ValueError(f"max_side must be at least 64 px or None (got {max_side})")
        if str(device).split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps' (got {device!r})")
        self.device = str(device)
        self.max_side = max_side
        self._model: Any = None  # face-alignment's FaceAlignment, built by load()
        self._lock = threading.Lock()

    def load(self) -> None:
        """Resolve the two model files (downloading them once) and build the networks."""
        with self._lock:
            if self._model is not None:
                return
            _require_version()
            try:
                s3fd_path = resolve(S3FD.name)
                fan_path = resolve(FAN_2D.name)
            except DownloadError as exc:
                raise DetectorUnavailable(str(exc)) from exc
            _check_hash_prefix(s3fd_path, S3FD)
            _check_hash_prefix(fan_path, FAN_2D)
            self._model = _build_face_alignment(str(s3fd_path), str(fan_path), self.device)

    def detect(self, image: PIL.Image.Image) -> list[Face]:
        """Every face S3FD finds (score > 0.5), with its 2DFAN-4 landmarks, in photo pixels."""
        self.load()
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        factor = np.ones(2)  # photo pixels per detection pixel, (x, y)
        if self.max_side is not None and max(rgb.size) > self.max_side:
            ratio = max(rgb.size) / self.max_side
            size = (max(round(rgb.width / ratio), 1), max(round(rgb.height / ratio), 1))
            factor = np.array(rgb.size, dtype=np.float64) / size
            rgb = rgb.resize(size, PIL.Image.Resampling.LANCZOS)
        pixels = np.asarray(rgb, dtype=np.uint8)  # [H, W, 3] RGB, as face-alignment expects
        model = self._model
        # Detect first: face-alignment answers "no face" with None and a warning.
        boxes = model.face_detector.detect_from_image(pixels.copy())
        if len(boxes) == 0:
            return []
        landmarks = model.get_landmarks_from_image(pixels, detected_faces=boxes)
        faces = []
        for points, box in zip(landmarks, boxes, strict=True):
            corners = _to_photo(np.asarray(box[:4], dtype=np.float64).reshape(2, 2), factor)
            x0, y0, x1, y1 = (float(v) for v in corners.flatten())
            faces.append(
                Face(
                    landmarks=_to_photo(np.asarray(points, dtype=np.float64)[:, :2], factor),
                    box=(x0, y0, x1, y1),
                    score=float(box[4]),
                )
            )
        return faces
