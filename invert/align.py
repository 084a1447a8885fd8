"""FFHQ face alignment: the crop every FFHQ generator and the e4e encoder expect.

The recipe is NVlabs/ffhq-dataset's `recreate_aligned_images` (download_ffhq.py), which the
e4e encoder (omertov/encoder4editing, utils/alignment.py) and StyleGAN-NADA use unchanged:
from the 68 iBUG landmarks it builds an oriented square ("quad") around the eyes and mouth,
then shrinks the photo, crops it, pads it with blurred reflections where the quad leaves the
photo, resamples the quad to a `transform_size` square and downsamples that to the output.

Pure geometry: numpy and Pillow (scipy for the padding's blur when it is installed, as it is
with face-alignment); no torch, no detector. `invert/landmarks.py` finds the landmarks.

Coordinates are pixel indices (x right, y down; the centre of pixel (i, j) is at (i, j)),
the convention of the landmark detectors and of the recipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageFilter

# 68-point iBUG layout (as seen in the photo: "left" is the image's left).
_EYE_LEFT = slice(36, 42)
_EYE_RIGHT = slice(42, 48)
_MOUTH_LEFT = 48  # outer lip, left corner
_MOUTH_RIGHT = 54  # outer lip, right corner

# The recipe's constants (download_ffhq.py).
_EYE_SPAN = 2.0  # half side >= eye distance * 2.0 ...
_EYE_MOUTH_SPAN = 1.8  # ... and >= eye-to-mouth distance * 1.8
_CENTRE_SHIFT = 0.1  # the centre sits 10% of the way from the eyes towards the mouth
_BORDER = 0.1  # crop border, times qsize (at least _MIN_BORDER px)
_MIN_BORDER = 3
_PAD = 0.3  # reflection padding, times qsize, once padding is needed
_BLUR = 0.02  # Gaussian sigma of the padding's blur, times qsize


@dataclass(frozen=True, eq=False)
class FaceFrame:
    """The points the recipe derives from the landmarks; each a [2] float64 (x, y)."""

    eye_left: np.ndarray  # mean of points 36-41
    eye_right: np.ndarray  # mean of points 42-47
    eye_avg: np.ndarray  # midpoint of the eyes
    eye_to_eye: np.ndarray  # eye_right - eye_left
    mouth_left: np.ndarray  # point 48
    mouth_right: np.ndarray  # point 54
    mouth_avg: np.ndarray  # midpoint of the mouth corners
    eye_to_mouth: np.ndarray  # mouth_avg - eye_avg


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """An FFHQ-aligned crop and where it came from."""

    image: PIL.Image.Image  # RGB, output_size x output_size
    quad: np.ndarray  # [4, 2] float64 corners in the photo's pixels: the crop's top-left,
    #   bottom-left, bottom-right, top-right (the order of Image.QUAD)
    landmarks: np.ndarray  # [68, 2] the input landmarks, photo pixels
    rotation_deg: float  # angle of the crop's x axis in the photo, from the photo's x axis
    #   towards its y axis (clockwise on screen); 0 for an upright face
    scale: float  # output pixels per photo pixel

    def to_output(self, points: np.ndarray) -> np.ndarray:
        """Photo pixel coordinates [..., 2] -> the aligned image's pixel coordinates [..., 2]."""
        return photo_to_aligned(points, self.quad, self.image.size[0])


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"landmarks must be [68, 2] (x, y) iBUG points (got shape {lm.shape})")
    if not np.all(np.isfinite(lm)):
        raise ValueError("landmarks contain NaN or infinite coordinates")
    return lm


def landmark_features(landmarks: np.ndarray) -> FaceFrame:
    """The eye and mouth points of the recipe from [68, 2] iBUG landmarks."""
    lm = _check_landmarks(landmarks)
    eye_left = lm[_EYE_LEFT].mean(axis=0)
    eye_right = lm[_EYE_RIGHT].mean(axis=0)
    eye_avg = (eye_left + eye_right) * 0.5
    mouth_left = lm[_MOUTH_LEFT].copy()
    mouth_right = lm[_MOUTH_RIGHT].copy()
    mouth_avg = (mouth_left + mouth_right) * 0.5
    return FaceFrame(
        eye_left=eye_left,
        eye_right=eye_right,
        eye_avg=eye_avg,
        eye_to_eye=eye_right - eye_left,
        mouth_left=mouth_left,
        mouth_right=mouth_right,
        mouth_avg=mouth_avg,
        eye_to_mouth=mouth_avg - eye_avg,
    )


def _perpendicular(v: np.ndarray) -> np.ndarray:
    """v rotated by +90 degrees in image coordinates (x, y) -> (-y, x): flipud(v) * [-1, 1]."""
    return np.array([-v[1], v[0]], dtype=np.float64)


def crop_axes(frame: FaceFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, x, y) of the oriented crop square; x and y are its half sides ([2] each).

    x follows the eye line, tilted by the eyes-to-mouth direction; its length is the larger
    of 2 x the eye distance and 1.8 x the eye-to-mouth distance.
    """
    # Both the eye line and the eyes-to-mouth line turned by -90 degrees vote for the
    # face's horizontal: e2e - flipud(e2m) * [-1, 1] in the recipe's spelling.
    x = frame.eye_to_eye - _perpendicular(frame.eye_to_mouth)
    norm = math.hypot(*x)
    if not norm > 1e-9:
        raise ValueError("landmarks are degenerate: the eyes and the mouth coincide")
    x = x / norm
    x = x * max(
        math.hypot(*frame.eye_to_eye) * _EYE_SPAN,
        math.hypot(*frame.eye_to_mouth) * _EYE_MOUTH_SPAN,
    )
    y = _perpendicular(x)
    centre = frame.eye_avg + frame.eye_to_mouth * _CENTRE_SHIFT
    return centre, x, y


def ffhq_quad(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The crop square of FFHQ's recipe: (quad [4, 2] float64, qsize: its side in pixels).

    Corners in Image.QUAD's order: c - x - y (top-left), c - x + y (bottom-left),
    c + x + y (bottom-right), c + x - y (top-right).
    """
    c, x, y = crop_axes(landmark_features(landmarks))
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad, float(math.hypot(*x) * 2)


def photo_to_aligned(points: np.ndarray, quad: np.ndarray, output_size: int) -> np.ndarray:
    """Map photo pixel coordinates [..., 2] into the aligned crop of `quad` [..., 2].

    The crop is a similarity of the photo: the quad's top-left corner goes to the output's
    corner (-0.5, -0.5) (pixel edges, since the recipe samples at `quad + 0.5`), its sides to
    the output's sides.
    """
    quad = np.asarray(quad, dtype=np.float64)
    origin = quad[0]
    x_side = quad[3] - quad[0]  # top edge, left -> right
    y_side = quad[1] - quad[0]  # left edge, top -> bottom
    offset = np.asarray(points, dtype=np.float64) - origin
    u = offset @ x_side / float(x_side @ x_side)
    v = offset @ y_side / float(y_side @ y_side)
    return np.stack([u, v], axis=-1) * output_size - 0.5


# --- The image steps of the recipe, each (image, quad, ...) -> (image, quad) -------------


def shrink(
    img: PIL.Image.Image, quad: np.ndarray, qsize: float, output_size: int
) -> tuple[PIL.Image.Image, np.ndarray, float]:
    """Downsample by an integer factor when the quad is over twice the output size.

    Resampling a much larger quad with the bilinear transform would alias; a Lanczos
    reduction first keeps the detail FFHQ keeps.
    """
    factor = int(np.floor(qsize / output_size * 0.5))
    if factor <= 1:
        return img, quad, qsize
    size = (int(np.rint(img.size[0] / factor)), int(np.rint(img.size[1] / factor)))
    return img.resize(size, PIL.Image.Resampling.LANCZOS), quad / factor, qsize / factor


def _bounds(quad: np.ndarray) -> tuple[int, int, int, int]:
    """The quad's bounding box (x0, y0, x1, y1), rounded outwards to whole pixels."""
    return (
        int(np.floor(quad[:, 0].min())),
        int(np.floor(quad[:, 1].min())),
        int(np.ceil(quad[:, 0].max())),
        int(np.ceil(quad[:, 1].max())),
    )


def crop_border(qsize: float) -> int:
    """Pixels kept around the quad's bounding box when cropping (and the padding threshold)."""
    return max(int(np.rint(qsize * _BORDER)), _MIN_BORDER)


def crop(img: PIL.Image.Image, quad: np.ndarray, border: int) -> tuple[PIL.Image.Image, np.ndarray]:
    """Cut the photo down to the quad's bounding box plus `border`, clipped to the photo."""
    x0, y0, x1, y1 = _bounds(quad)
    box = (max(x0 - border, 0), max(y0 - border, 0))
    box_end = (min(x1 + border, img.size[0]), min(y1 + border, img.size[1]))
    if box_end[0] - box[0] < img.size[0] or box_end[1] - box[1] < img.size[1]:
        img = img.crop((*box, *box_end))
        quad = quad - np.array(box, dtype=np.float64)
    return img, quad


def padding_needed(
    size: tuple[int, int], quad: np.ndarray, border: int
) -> tuple[int, int, int, int]:
    """How far (left, top, right, bottom) the quad plus `border` reaches outside the image."""
    x0, y0, x1, y1 = _bounds(quad)
    return (
        max(-x0 + border, 0),
        max(-y0 + border, 0),
        max(x1 - size[0] + border, 0),
        max(y1 - size[1] + border, 0),
    )


def _gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an [H, W, 3] float32 image over H and W (scipy, else Pillow)."""
    try:
        from scipy import ndimage  # face-alignment needs scipy
    except ImportError:
        # Pillow's GaussianBlur approximates the Gaussian with box blurs, on uint8 pixels.
        image = PIL.Image.fromarray(np.uint8(np.clip(np.rint(pixels), 0, 255)), "RGB")
        blurred = image.filter(PIL.ImageFilter.GaussianBlur(radius=sigma))
        return np.asarray(blurred, dtype=np.float32)
    return np.asarray(ndimage.gaussian_filter(pixels, [sigma, sigma, 0]), dtype=np.float32)


def blurred_reflection_pad(
    pixels: np.ndarray, pad: tuple[int, int, int, int], qsize: float
) -> np.ndarray:
    """FFHQ's padding: reflect the image outwards by `pad` (left, top, right, bottom; each
    > 0), then fade the reflection towards a blurred copy and, further out, towards the
    image's median colour, so that the mirrored face does not read as a second face.

    pixels: [H, W, 3] float32 -> [H + top + bottom, W + left + right, 3] float32.
    """
    left, top, right, bottom = pad
    img = np.pad(pixels, ((top, bottom), (left, right), (0, 0)), "reflect")
    h, w, _ = img.shape
    y, x, _ = np.ogrid[:h, :w, :1]
    x, y = x.astype(np.float64), y.astype(np.float64)  # the recipe's mask is float64 too
    # The mask: 0 inside the original image, rising to 1 at the padded image's edges.
    mask = np.maximum(
        1.0 - np.minimum(x / left, (w - 1 - x) / right),
        1.0 - np.minimum(y / top, (h - 1 - y) / bottom),
    )
    blur = qsize * _BLUR
    img += (_gaussian_blur(img, blur) - img) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    img += (np.median(img, axis=(0, 1)) - img) * np.clip(mask, 0.0, 1.0)
    return img


def pad(
    img: PIL.Image.Image, quad: np.ndarray, qsize: float, border: int
) -> tuple[PIL.Image.Image, np.ndarray]:
    """Extend the image with blurred reflections where the quad (plus border) leaves it.

    As the recipe: padding starts once the quad comes within 4 px of needing `border`, and
    then pads every side by at least 0.3 x qsize.
    """
    needed = padding_needed(img.size, quad, border)
    if max(needed) <= border - 4:
        return img, quad
    amount = np.maximum(needed, int(np.rint(qsize * _PAD)))
    left, top, right, bottom = (max(int(a), 1) for a in amount)
    pixels = blurred_reflection_pad(
        np.asarray(img, dtype=np.float32), (left, top, right, bottom), qsize
    )
    padded = PIL.Image.fromarray(np.uint8(np.clip(np.rint(pixels), 0, 255)), "RGB")
    return padded, quad + np.array([left, top], dtype=np.float64)


def resample_quad(img: PIL.Image.Image, quad: np.ndarray, size: int) -> PIL.Image.Image:
    """Warp the quad onto a size x size square (bilinear; +0.5: pixel centres -> edges)."""
    return img.transform(
        (size, size),
        PIL.Image.Transform.QUAD,
        tuple((quad + 0.5).flatten().tolist()),
        PIL.Image.Resampling.BILINEAR,
    )


def default_transform_size(output_size: int) -> int:
    """4 x the output, at most 4096 (never below the output).

    FFHQ resamples the quad at 4096 and downsamples to 1024: the 4x supersampling makes up
    for the bilinear warp's lack of antialiasing. 4 x output_size keeps that ratio for
    smaller outputs (256 -> 1024) at a sixteenth of the cost of always using 4096, and gives
    FFHQ's exact pipeline at 1024.
    """
    return max(output_size, min(4096, 4 * output_size))


def align_face(
    image: PIL.Image.Image,
    landmarks: np.ndarray,
    output_size: int,
    *,
    transform_size: int | None = None,
    enable_padding: bool = True,
) -> AlignedFace:
    """FFHQ-align a face: NVlabs/ffhq-dataset's recipe from its 68 iBUG landmarks.

    Args:
        image: the photo (any mode; converted to RGB; EXIF orientation already applied).
        landmarks: [68, 2] (x, y) iBUG points in the photo's pixel coordinates.
        output_size: side of the aligned square in pixels (1024 for ffhq-1024, 256 for e4e).
        transform_size: side at which the quad is resampled before the final Lanczos
            downsampling; None: `default_transform_size(output_size)` (4096 at 1024, as FFHQ).
        enable_padding: fill the parts of the quad outside the photo with blurred reflections
            (False: they stay black, as PIL's transform leaves them).

    Returns:
        The aligned RGB image, the quad in the photo's pixels, the landmarks, the face's
        rotation and the scale (output pixels per photo pixel).

    Example:
        >>> face = align_face(photo, detector.detect(photo)[0].landmarks, 1024)
        >>> face.image.size
        (1024, 1024)
    """
    if output_size < 1:
        raise ValueError(f"output_size must be a positive number of pixels (got {output_size})")
    if transform_size is None:
        transform_size = default_transform_size(output_size)
    if transform_size < 1:
        raise ValueError(
            f"transform_size must be a positive number of pixels (got {transform_size})"
        )
    lm = _check_landmarks(landmarks)
    quad, qsize = ffhq_quad(lm)
    img = image if image.mode == "RGB" else image.convert("RGB")

    work_quad = quad.copy()
    img, work_quad, work_qsize = shrink(img, work_quad, qsize, output_size)
    border = crop_border(work_qsize)
    img, work_quad = crop(img, work_quad, border)
    if enable_padding:
        img, work_quad = pad(img, work_quad, work_qsize, border)
    img = resample_quad(img, work_quad, transform_size)
    if output_size < transform_size:
        img = img.resize((output_size, output_size), PIL.Image.Resampling.LANCZOS)
    elif output_size > transform_size:
        img = img.resize((output_size, output_size), PIL.Image.Resampling.BICUBIC)

    x_side = quad[3] - quad[0]
    return AlignedFace(
        image=img,
        quad=quad,
        landmarks=lm.copy(),
        rotation_deg=math.degrees(math.atan2(x_side[1], x_side[0])),
        scale=output_size / qsize,
    )
