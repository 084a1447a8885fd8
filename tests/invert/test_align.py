"""FFHQ alignment (invert/align.py) on synthetic faces: the crop follows the face.

The recipe is built from the eyes and the mouth, so moving, turning or resizing the face
by a similarity must move, turn and resize the crop square by the same similarity, and the
aligned image must not change. The faces are a hand-made 68-point iBUG layout; painted dots
at the eyes and the mouth show where the pixels went.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest

from invert.align import (
    AlignedFace,
    align_face,
    default_transform_size,
    ffhq_quad,
    landmark_features,
    photo_to_aligned,
)


def _arc(centre, half_w, half_h, degrees):
    a = np.radians(np.asarray(degrees, dtype=np.float64))
    return np.stack([centre[0] + half_w * np.cos(a), centre[1] - half_h * np.sin(a)], axis=1)


def face_template() -> np.ndarray:
    """A frontal 68-point iBUG face, eyes 1 unit apart, eye midpoint at the origin [68, 2]."""
    jaw = _arc((0.0, 0.1), 0.95, 1.35, np.linspace(180, 360, 17))
    brow_left = np.stack([np.linspace(-0.85, -0.2, 5), [-0.3, -0.38, -0.4, -0.38, -0.33]], 1)
    brow_right = brow_left[::-1] * [-1, 1]
    nose = np.stack([np.zeros(4), np.linspace(0.1, 0.5, 4)], 1)
    nostrils = np.stack([np.linspace(-0.2, 0.2, 5), [0.6, 0.63, 0.65, 0.63, 0.6]], 1)
    eye_angles = [180, 120, 60, 0, -60, -120]  # outer corner, top, inner corner, bottom
    eye_left = _arc((-0.5, 0.0), 0.14, 0.06, eye_angles)
    eye_right = _arc((0.5, 0.0), 0.14, 0.06, [0, 60, 120, 180, 240, 300])
    mouth_outer = _arc((0.0, 0.95), 0.4, 0.15, np.linspace(180, -150, 12))
    mouth_inner = _arc((0.0, 0.95), 0.3, 0.05, np.linspace(180, -135, 8))
    lm = np.concatenate(
        [jaw, brow_left, brow_right, nose, nostrils, eye_left, eye_right, mouth_outer, mouth_inner]
    )
    assert lm.shape == (68, 2)
    return lm


def similarity(theta: float, scale: float, shift) -> tuple[np.ndarray, np.ndarray]:
    """(A [2, 2], t [2]) of p -> A p + t: rotation by theta (x towards y), then scale."""
    c, s = math.cos(theta), math.sin(theta)
    return scale * np.array([[c, -s], [s, c]]), np.asarray(shift, dtype=np.float64)


def apply(points: np.ndarray, a: np.ndarray, t: np.ndarray) -> np.ndarray:
    return points @ a.T + t


def place(eye_distance: float, centre) -> np.ndarray:
    """The template with the given eye distance (px) and eye midpoint (px)."""
    return face_template() * eye_distance + np.asarray(centre, dtype=np.float64)


# Colours of the painted dots: at the two eye centres and the middle of the mouth.
DOTS = {"eye_left": (255, 0, 0), "eye_right": (0, 255, 0), "mouth_avg": (0, 0, 255)}


def dot_points(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    frame = landmark_features(landmarks)
    return {name: getattr(frame, name) for name in DOTS}


def painted_photo(size: tuple[int, int], landmarks: np.ndarray, radius: float) -> PIL.Image.Image:
    """A grey gradient with coloured dots at the eyes and the mouth."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    grey = (96 + 64 * xx / w + 32 * yy / h).astype(np.uint8)
    image = PIL.Image.fromarray(np.stack([grey, grey, grey], axis=-1), "RGB")
    draw = PIL.ImageDraw.Draw(image)
    for name, point in dot_points(landmarks).items():
        x, y = point
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=DOTS[name])
    return image


def dot_centres(image: PIL.Image.Image) -> dict[str, np.ndarray]:
    """The colour-weighted centre (x, y) of each dot in an image."""
    pixels = np.asarray(image, dtype=np.float64)
    yy, xx = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
    found = {}
    for name, colour in DOTS.items():
        channel = int(np.argmax(colour))
        others = [c for c in range(3) if c != channel]
        weight = np.clip(pixels[..., channel] - pixels[..., others].max(axis=-1) - 40, 0, None)
        assert weight.sum() > 0, f"the {name} dot is not in the image"
        found[name] = np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()
    return found


def warp(image: PIL.Image.Image, a: np.ndarray, t: np.ndarray, size) -> PIL.Image.Image:
    """The photo moved by p -> A p + t (pixel-centre coordinates), as a camera would see it."""
    inv = np.linalg.inv(a)
    # Pillow's AFFINE maps output to input in continuous coordinates (pixel centres at +0.5).
    offset = -inv @ (t + 0.5) + 0.5
    data = (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])
    return image.transform(size, PIL.Image.Transform.AFFINE, data, PIL.Image.Resampling.BICUBIC)


# --- geometry ------------------------------------------------------------------------------


def test_features_of_the_template():
    frame = landmark_features(place(100.0, (300.0, 200.0)))
    np.testing.assert_allclose(frame.eye_left, [250.0, 200.0], atol=1e-9)
    np.testing.assert_allclose(frame.eye_right, [350.0, 200.0], atol=1e-9)
    np.testing.assert_allclose(frame.eye_to_eye, [100.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(frame.mouth_left, [260.0, 295.0], atol=1e-9)
    np.testing.assert_allclose(frame.mouth_right, [340.0, 295.0], atol=1e-9)
    np.testing.assert_allclose(frame.eye_to_mouth, [0.0, 95.0], atol=1e-9)


def test_quad_of_an_upright_face():
    quad, qsize = ffhq_quad(place(100.0, (300.0, 200.0)))
    # Half side: max(2 x eye distance, 1.8 x eye-to-mouth) = max(200, 171) = 200; the centre
    # sits a tenth of the way to the mouth: (300, 209.5).
    assert qsize == pytest.approx(400.0)
    expected = [[100.0, 9.5], [100.0, 409.5], [500.0, 409.5], [500.0, 9.5]]
    np.testing.assert_allclose(quad, expected, atol=1e-9)


@pytest.mark.parametrize(
    ("theta", "scale", "shift"),
    [(0.3, 1.0, (0.0, 0.0)), (-0.7, 2.5, (40.0, -13.0)), (2.9, 0.37, (512.5, 300.25))],
)
def test_quad_follows_a_similarity(theta, scale, shift):
    base = place(100.0, (0.0, 0.0))
    a, t = similarity(theta, scale, shift)
    quad0, qsize0 = ffhq_quad(base)
    quad1, qsize1 = ffhq_quad(apply(base, a, t))

    np.testing.assert_allclose(quad1, apply(quad0, a, t), atol=1e-9)
    np.testing.assert_allclose(quad1.mean(axis=0), apply(quad0.mean(axis=0), a, t), atol=1e-9)
    assert qsize1 == pytest.approx(qsize0 * scale, rel=1e-12)
    side = np.linalg.norm(quad1[3] - quad1[0])
    assert side == pytest.approx(qsize0 * scale, rel=1e-12)
    top = quad1[3] - quad1[0]
    angle = math.atan2(top[1], top[0])
    assert math.remainder(angle - theta, 2 * math.pi) == pytest.approx(0.0, abs=1e-6)


def test_aligned_face_reports_rotation_and_scale():
    a, t = similarity(math.radians(20.0), 0.5, (200.0, 220.0))
    lm = apply(place(100.0, (0.0, 0.0)), a, t)
    image = PIL.Image.new("RGB", (400, 400), (128, 128, 128))
    face = align_face(image, lm, 64)
    assert isinstance(face, AlignedFace)
    assert face.rotation_deg == pytest.approx(20.0, abs=1e-6)
    assert face.scale == pytest.approx(64 / 200.0)  # qsize 400 at scale 1, 200 here
    np.testing.assert_allclose(face.quad, ffhq_quad(lm)[0])
    np.testing.assert_array_equal(face.landmarks, lm)
    # The quad's corners land on the output's corners (pixel edges).
    np.testing.assert_allclose(
        face.to_output(face.quad), [[-0.5, -0.5], [-0.5, 63.5], [63.5, 63.5], [63.5, -0.5]]
    )


def test_photo_to_aligned_is_the_quad_frame():
    quad = np.array([[10.0, 10.0], [10.0, 110.0], [110.0, 110.0], [110.0, 10.0]])
    np.testing.assert_allclose(photo_to_aligned(np.array([60.0, 10.0]), quad, 200), [99.5, -0.5])


# --- images -------------------------------------------------------------------------------


def test_dots_land_where_the_geometry_says():
    lm = place(100.0, (256.0, 230.0))
    photo = painted_photo((512, 512), lm, radius=7)
    face = align_face(photo, lm, 256)
    assert face.image.mode == "RGB" and face.image.size == (256, 256)
    found = dot_centres(face.image)
    for name, point in dot_points(lm).items():
        np.testing.assert_allclose(found[name], face.to_output(point), atol=1.0, err_msg=name)


@pytest.mark.parametrize(
    ("theta", "scale", "shift"),
    [(math.radians(30.0), 0.8, (150.0, -60.0)), (math.radians(-75.0), 1.3, (-120.0, 420.0))],
)
def test_turning_the_photo_does_not_change_the_crop(theta, scale, shift):
    """A face photographed turned and resized aligns to the same image: the dots agree."""
    lm = place(90.0, (256.0, 230.0))
    photo = painted_photo((512, 512), lm, radius=7)
    a, t = similarity(theta, scale, shift)
    moved_photo = warp(photo, a, t, (640, 640))
    moved_lm = apply(lm, a, t)

    upright = align_face(photo, lm, 256)
    moved = align_face(moved_photo, moved_lm, 256)

    assert moved.rotation_deg == pytest.approx(upright.rotation_deg + math.degrees(theta))
    assert moved.scale == pytest.approx(upright.scale / scale)
    found_upright, found_moved = dot_centres(upright.image), dot_centres(moved.image)
    for name in DOTS:
        np.testing.assert_allclose(found_moved[name], found_upright[name], atol=1.5, err_msg=name)


def test_a_large_photo_is_shrunk_first_and_still_lands_right():
    """qsize / output_size / 2 >= 2: the recipe's Lanczos reduction runs (factor 3 here)."""
    lm = place(400.0, (1000.0, 900.0))
    photo = painted_photo((2000, 2000), lm, radius=24)
    face = align_face(photo, lm, 256)  # qsize 1600
    found = dot_centres(face.image)
    for name, point in dot_points(lm).items():
        np.testing.assert_allclose(found[name], face.to_output(point), atol=2.0, err_msg=name)


def test_a_face_at_the_border_is_padded():
    background = (200, 170, 120)
    photo = PIL.Image.new("RGB", (400, 300), background)
    lm = place(100.0, (40.0, 30.0))  # the quad reaches far outside the top-left corner
    padded = align_face(photo, lm, 128)
    assert padded.image.size == (128, 128) and padded.image.mode == "RGB"
    corner = np.asarray(padded.image, dtype=np.float64)[:16, :16].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(corner, background, atol=3.0)  # reflections, not black

    bare = align_face(photo, lm, 128, enable_padding=False)
    assert bare.image.size == (128, 128)
    assert np.asarray(bare.image)[:16, :16].max() == 0  # outside the photo: black


def test_padding_blur_without_scipy_is_close(monkeypatch):
    """The Pillow fallback of the padding's Gaussian blur stays near scipy's."""
    rng = np.random.default_rng(0)
    photo = PIL.Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), "RGB")
    lm = place(60.0, (30.0, 40.0))
    with_scipy = np.asarray(align_face(photo, lm, 64).image, dtype=np.float64)
    monkeypatch.setitem(sys.modules, "scipy", None)  # `from scipy import ...` now fails
    without = np.asarray(align_face(photo, lm, 64).image, dtype=np.float64)
    assert np.abs(with_scipy - without).mean() < 3.0


def test_any_mode_becomes_rgb():
    lm = place(50.0, (100.0, 100.0))
    for mode in ("L", "RGBA", "P"):
        face = align_face(PIL.Image.new(mode, (200, 200)), lm, 32)
        assert face.image.mode == "RGB" and face.image.size == (32, 32)


def test_default_transform_size():
    assert default_transform_size(1024) == 4096  # FFHQ's own pipeline
    assert default_transform_size(256) == 1024
    assert default_transform_size(2048) == 4096
    assert default_transform_size(8192) == 8192


def test_bad_input_names_the_problem():
    image = PIL.Image.new("RGB", (64, 64))
    with pytest.raises(ValueError, match=r"\[68, 2\]"):
        align_face(image, np.zeros((5, 2)), 32)
    with pytest.raises(ValueError, match="output_size"):
        align_face(image, place(10.0, (32.0, 32.0)), 0)
    with pytest.raises(ValueError, match="degenerate"):
        align_face(image, np.zeros((68, 2)), 32)
