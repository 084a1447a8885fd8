"""The detector adapter (invert/landmarks.py): choosing a face, aligning a photo, and
face-alignment's networks loading the project's model files.

The real S3FD / 2DFAN-4 weights cannot exist in tests (no network). A stand-in detector
returning known landmarks tests `align_photo`; randomly initialised networks of the same
architecture, placed through `NADA_WEIGHTS_FACE_*`, test that `FanDetector` builds and runs
face-alignment from local files without downloading anything.
"""

from __future__ import annotations

import dataclasses
import math
import socket

import numpy as np
import PIL.Image
import pytest

from invert import weights
from invert.align import align_face
from invert.landmarks import (
    FAN_2D,
    S3FD,
    Face,
    FanDetector,
    LandmarkDetector,
    NoFaceError,
    align_photo,
    choose_face,
)
from stylegan2.download import DownloadError


def face_landmarks(eye_distance: float, centre, theta: float = 0.0) -> np.ndarray:
    """A plausible frontal 68-point iBUG layout [68, 2], turned by theta around its centre."""
    t = np.linspace(0.0, 1.0, 68)
    lm = np.stack([np.cos(7 * t) * 0.9, 0.6 + np.sin(5 * t) * 0.6], axis=1)  # jaw, nose, ...
    for start, x in ((36, -0.5), (42, 0.5)):  # eyes: six points around (x, 0)
        a = np.radians([180, 120, 60, 0, -60, -120])
        lm[start : start + 6] = np.stack([x + 0.14 * np.cos(a), -0.06 * np.sin(a)], axis=1)
    a = np.radians(np.linspace(180, -150, 12))  # outer lip, corners at 48 and 54
    lm[48:60] = np.stack([0.4 * np.cos(a), 0.95 - 0.15 * np.sin(a)], axis=1)
    c, s = math.cos(theta), math.sin(theta)
    return lm @ np.array([[c, s], [-s, c]]) * eye_distance + np.asarray(centre, dtype=float)


def face(box, landmarks=None, score=0.99) -> Face:
    x0, y0, x1, y1 = box
    if landmarks is None:
        landmarks = face_landmarks((x1 - x0) / 2, ((x0 + x1) / 2, (y0 + y1) / 2))
    return Face(landmarks=landmarks, box=box, score=score)


class StandInDetector:
    """Answers every photo with the faces it was given (the real weights cannot exist here)."""

    def __init__(self, faces: list[Face]):
        self.faces = faces
        self.seen: list[tuple[int, int]] = []

    def detect(self, image: PIL.Image.Image) -> list[Face]:
        self.seen.append(image.size)
        return list(self.faces)


# --- choosing a face -----------------------------------------------------------------------


def test_no_face_is_an_error_that_says_what_to_do():
    with pytest.raises(NoFaceError, match="no face found") as info:
        choose_face([])
    assert "--no-align" in str(info.value) and "align: false" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_one_face_needs_no_note():
    only = face((10, 10, 50, 60))
    assert choose_face([only]) == (only, None)


def test_the_largest_of_three_faces_is_chosen():
    small, large, medium = face((0, 0, 20, 20)), face((100, 50, 180, 150)), face((5, 5, 60, 45))
    chosen, note = choose_face([small, large, medium])
    assert chosen is large
    assert note == "3 faces found; using the largest"


# --- aligning a photo ------------------------------------------------------------------------


def test_stand_in_detector_satisfies_the_protocol():
    detector: LandmarkDetector = StandInDetector([])
    assert detector.detect(PIL.Image.new("RGB", (8, 8))) == []


def test_align_photo_is_align_face_on_the_largest_face():
    rng = np.random.default_rng(0)
    photo = PIL.Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), "RGB")
    big = face((150, 60, 330, 260), face_landmarks(90.0, (240.0, 150.0), theta=0.2))
    small = face((10, 10, 60, 60))
    detector = StandInDetector([small, big])

    aligned, note = align_photo(photo, 128, detector)

    assert detector.seen == [(400, 300)]
    assert note == "2 faces found; using the largest"
    direct = align_face(photo, big.landmarks, 128)
    assert aligned.image.size == (128, 128)
    np.testing.assert_array_equal(np.asarray(aligned.image), np.asarray(direct.image))
    np.testing.assert_allclose(aligned.quad, direct.quad)
    assert aligned.rotation_deg == pytest.approx(direct.rotation_deg)


def test_align_photo_without_a_face_raises():
    with pytest.raises(NoFaceError):
        align_photo(PIL.Image.new("RGB", (64, 64)), 64, StandInDetector([]))


# --- the model files -----------------------------------------------------------------------


def test_both_model_files_are_registered():
    for entry in (S3FD, FAN_2D):
        info = weights.get_weights_info(entry.name)
        assert info == entry
        assert info.url is not None and info.url.startswith("https://")
        assert info.url.endswith("/" + info.filename)
        assert info.manual and "BSD-3-Clause" in info.source
    assert {"face-s3fd", "face-fan2d"} <= {w.name for w in weights.list_weights()}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty cache and both entries pointing at a closed port on 127.0.0.1."""
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    for entry in (S3FD, FAN_2D):
        monkeypatch.delenv(weights.env_var(entry.name), raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connections are refused
    for entry in (S3FD, FAN_2D):
        url = f"http://127.0.0.1:{port}/{entry.filename}"
        weights.add_weights(dataclasses.replace(entry, url=url), overwrite=True)
    yield
    for entry in (S3FD, FAN_2D):
        weights.add_weights(entry, overwrite=True)


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("entry", [S3FD, FAN_2D], ids=lambda e: e.name)
def test_an_unreachable_file_names_itself_and_the_override(entry):
    with pytest.raises(DownloadError) as info:
        weights.resolve(entry.name, progress=False)
    message = str(info.value)
    assert entry.name in message
    assert weights.env_var(entry.name) in message
    assert entry.filename in message  # where to copy it by hand


@pytest.mark.usefixtures("offline")
def test_fan_detector_passes_the_download_error_on():
    detector = FanDetector()  # constructing loads nothing
    with pytest.raises(DownloadError, match="NADA_WEIGHTS_FACE_S3FD"):
        detector.detect(PIL.Image.new("RGB", (32, 32)))


def test_fan_detector_checks_its_arguments():
    with pytest.raises(ValueError, match="device must be"):
        FanDetector("tpu")
    with pytest.raises(ValueError, match="max_side"):
        FanDetector(max_side=10)


# --- face-alignment over local files ---------------------------------------------------------


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """Random S3FD and 2DFAN-4 state dicts saved like the real files; S3FD is rigged to
    report exactly one face (the 1 x 1 coarsest level of a 128 px image) so that 2DFAN-4
    runs once."""
    torch = pytest.importorskip("torch")
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    torch.manual_seed(0)
    detector = s3fd()
    with torch.no_grad():
        for name, module in detector.named_children():
            if name.endswith("_mbox_loc"):  # boxes = the prior boxes
                module.weight.zero_()
                module.bias.zero_()
            elif name.endswith("_mbox_conf"):  # face logit -20 everywhere but the last level
                module.weight.zero_()
                module.bias.zero_()
                module.bias[-1] = 20.0 if name == "conv7_2_mbox_conf" else -20.0
    folder = tmp_path_factory.mktemp("face-weights")
    paths = {"face-s3fd": folder / S3FD.filename, "face-fan2d": folder / FAN_2D.filename}
    torch.save(detector.state_dict(), paths["face-s3fd"])
    landmark_net = FAN(4)
    torch.save(landmark_net.state_dict(), paths["face-fan2d"])
    return paths, landmark_net.state_dict()


def test_fan_detector_runs_on_local_files(random_weights, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    import face_alignment.api
    import face_alignment.detection.sfd.sfd_detector as sfd_detector
    import face_alignment.utils

    paths, fan_state = random_weights
    monkeypatch.setenv("NADA_CACHE_DIR", str(tmp_path / "cache"))
    for name, path in paths.items():
        monkeypatch.setenv(weights.env_var(name), str(path))

    def no_network(*args, **kwargs):
        raise AssertionError("face-alignment tried to download a model file")

    monkeypatch.setattr(face_alignment.api, "load_file_from_url", no_network)
    monkeypatch.setattr(sfd_detector, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    # numba compiles these two heatmap helpers on first use (~10 s on 2 cores); their Python
    # originals compute the same numbers.
    for helper in ("_get_preds_fromhm", "transform_np"):
        jitted = getattr(face_alignment.utils, helper)
        monkeypatch.setattr(face_alignment.utils, helper, getattr(jitted, "py_func", jitted))

    detector = FanDetector("cpu", max_side=128)
    detector.load()
    detector._model.flip_input = False  # one 2DFAN-4 pass instead of two (~4 s on a CPU)
    faces = detector.detect(PIL.Image.new("RGB", (256, 256), (120, 110, 100)))

    # The loaded landmark network is the file's, not a fresh one.
    loaded = detector._model.face_alignment_net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in fan_state.items())
    assert len(faces) == 1
    (found,) = faces
    assert found.landmarks.shape == (68, 2) and found.landmarks.dtype == np.float64
    assert np.isfinite(found.landmarks).all()
    assert found.score == pytest.approx(1.0)
    # A prior box of the coarsest level (stride 128, side 512) in the 128 px detection image,
    # back in the 256 px photo's pixels: side 1024, centre (64 + 128 k + 0.5) * 2 - 0.5.
    x0, y0, x1, y1 = found.box
    assert (x1 - x0, y1 - y0) == pytest.approx((1024.0, 1024.0))
    for centre in ((x0 + x1) / 2, (y0 + y1) / 2):
        assert ((centre + 0.5) / 2 - 0.5 - 64) % 128 == pytest.approx(0.0)

    model = detector._model
    detector.load()
    assert detector._model is model  # loaded once
