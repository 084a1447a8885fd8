"""A domain given by example images (issue 12): its CLIP embedding, and the direction and
target the losses use, mixed with the text's when the job has both.

StyleGAN-NADA's image-to-image direction (the authors' `compute_img2img_direction`) takes
the CLIP embedding of a set of style images as the target and that of the base generator's
own samples as the source. Here, per CLIP model:

    e(image)   = normalize(mean_v normalize(E_I(view_v(image))))      v: seeded random views
    I(domain)  = normalize(mean_i e(image_i))
    ΔI_dom     = normalize(I(target images) - I(source images or generator samples))

A view is a random resized crop (0.7..1 of the square's area, anywhere in the picture) with
a random horizontal flip: with a handful of pictures, one embedding each is mostly where the
subject happens to sit in the frame; averaged views keep what the pictures share. The RNG is
seeded by (job seed, image name), so the same image in the same job gives the same
embedding, whatever other images come with it, on every retry or resume.

Mixing text and images (w = AdaptParams.effective_image_weight):

    ΔT = normalize((1 - w) * ΔT_text + w * ΔI_dom)
    T  = normalize((1 - w) * T_text + w * I(target images))     (the global loss's target)

The mix is of *directions*, each taken within one modality, never text minus image: CLIP
puts its image and text embeddings in two separate cones (the "modality gap", Liang et al.,
2022), so a difference across modalities (I(cats) - T("dog")) points mostly from one cone to
the other and hardly at all from dog to cat. Unit directions taken inside each modality are
comparable, and their weighted sum leans between them. The global target mixes embeddings
of the two modalities; it is a cosine pull, and w = 0 or 1 gives one modality's exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from invert.example_images import check_stored
from nada.errors import ParamError
from nada.params import IMAGE_FIELDS, AdaptParams
from nada.prompts import template_prompts
from stylegan2.family import crop_to_content, family_of
from worker.clip_loss import (
    check_prompt_tokens,
    class_embedding,
    safe_normalize,
    text_direction,
)
from worker.clip_models import ClipModel
from worker.samples import noise_shapes, random_noise, render

CROP_AREA = (0.7, 1.0)  # share of the image's largest square a view covers
SOURCE_SAMPLES = 16  # base-generator images standing for the source domain (no source images)
ENCODE_BATCH = 16  # images per CLIP pass


class DomainGuidance(NamedTuple):
    """What one CLIP model's losses use for an image-guided job (a (direction, target) pair:
    what ClipGuide and ScoreEvaluator take in place of texts)."""

    direction: Tensor  # ΔT [D], unit: the directional loss's (and the direction score's)
    target: Tensor  # T [D], unit: the global loss's (and the target score's)


# -- pure math -----------------------------------------------------------------------------


def seeded_rng(seed: int, stream: str) -> torch.Generator:
    """A CPU RNG for one purpose of one job ('views/<image name>', 'source-samples')."""
    digest = hashlib.blake2b(f"{seed}/domain/{stream}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


def random_views(
    image: Tensor,  # [3, H, W] in [-1, 1]
    n_views: int,
    size: tuple[int, int],  # (height, width) of each view: CLIP's input size
    rng: torch.Generator,
    area: tuple[float, float] = CROP_AREA,
) -> Tensor:
    """[n_views, 3, *size]: square crops covering a uniform `area` share of the largest
    square, at uniform positions, each flipped left-right with probability 1/2."""
    _, height, width = image.shape
    side = min(height, width)
    views = []
    for _ in range(n_views):
        share = area[0] + (area[1] - area[0]) * float(torch.rand((), generator=rng))
        crop = max(1, round(side * share**0.5))
        top = int(torch.randint(0, height - crop + 1, (), generator=rng))
        left = int(torch.randint(0, width - crop + 1, (), generator=rng))
        view = image[:, top : top + crop, left : left + crop].unsqueeze(0)
        view = F.interpolate(view, size=size, mode="bicubic", align_corners=False, antialias=True)
        if float(torch.rand((), generator=rng)) < 0.5:
            view = view.flip(-1)
        views.append(view.clamp(-1, 1))
    return torch.cat(views)


def mean_embedding(embeddings: Tensor) -> Tensor:
    """[N, D] embeddings (any norm) -> the unit [D] of the mean of their unit vectors."""
    return safe_normalize(safe_normalize(embeddings).mean(dim=0))


def image_direction(source: Tensor, target: Tensor) -> Tensor:
    """ΔI [D] from two unit domain embeddings [D]."""
    return safe_normalize(target - source)


def mix(text: Tensor | None, images: Tensor | None, weight: float) -> Tensor:
    """normalize((1 - weight) * text + weight * images) of two unit vectors; weight 0 is
    `text` and 1 is `images`, as they are (the other may then be None)."""
    if weight == 0:
        assert text is not None
        return text
    if weight == 1:
        assert images is not None
        return images
    assert text is not None and images is not None
    return safe_normalize((1 - weight) * text + weight * images)


# -- the images ----------------------------------------------------------------------------


def check_domain_images(
    params: AdaptParams, domain_images: Mapping[str, Path] | None
) -> dict[str, Path]:
    """Every image the params name, verified (invert/example_images.check_stored) before
    anything is loaded.

    Raises:
        ParamError: an image the params name that `domain_images` does not hold.
        PhotoRejected (an InputError): a file missing or holding other bytes than its name.
    """
    files: dict[str, Path] = {}
    for name in IMAGE_FIELDS:
        for sha in getattr(params, name):
            path = (domain_images or {}).get(sha)
            if path is None:
                raise ParamError(name, f"image {sha[:12]}… was not provided to the engine")
            files[sha] = check_stored(Path(path), sha)
    return files


def load_example(path: Path) -> Tensor:
    """A stored example image (an RGB PNG) as [3, H, W] in [-1, 1]."""
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.float32)  # [H, W, 3] in 0..255
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1


@torch.no_grad()
def encode_batched(clip: ClipModel, images: Tensor) -> Tensor:
    """[N, 3, H, W] in [-1, 1] -> [N, D] on the CPU, ENCODE_BATCH images per pass."""
    parts = [
        clip.encode_images(images[i : i + ENCODE_BATCH].to(clip.device)).float().cpu()
        for i in range(0, images.shape[0], ENCODE_BATCH)
    ]
    return torch.cat(parts)


def image_embedding(clip: ClipModel, image: Tensor, n_views: int, rng: torch.Generator) -> Tensor:
    """e(image) [D]: the unit mean of its views' unit embeddings."""
    return mean_embedding(encode_batched(clip, random_views(image, n_views, clip.image_size, rng)))


def images_embedding(
    clip: ClipModel, files: Mapping[str, Path], names: Sequence[str], *, seed: int, views: int
) -> Tensor:
    """I(domain) [D] of the named example images."""
    per_image = [
        image_embedding(clip, load_example(files[n]), views, seeded_rng(seed, f"views/{n}"))
        for n in names
    ]
    return mean_embedding(torch.stack(per_image))


@torch.no_grad()
def generator_samples(
    generator: nn.Module, latent_avg: Tensor | None, *, seed: int, truncation: float
) -> Tensor:
    """SOURCE_SAMPLES seeded images [N, 3, H, W] of the (frozen) base generator: the source
    domain when no source images are given, as in the authors' image-to-image direction."""
    rng = seeded_rng(seed, "source-samples")
    z = torch.randn(SOURCE_SAMPLES, family_of(generator).z_dim(generator), generator=rng)
    noise = random_noise(noise_shapes(generator), SOURCE_SAMPLES, rng)
    return render(
        generator,
        z,
        noise,
        truncation=truncation if latent_avg is not None else 1.0,
        truncation_latent=latent_avg,
    )


# -- one job -------------------------------------------------------------------------------


def domain_guidance(
    clips: Sequence[ClipModel],
    params: AdaptParams,
    files: Mapping[str, Path],
    generator: nn.Module,
    latent_avg: Tensor | None,
    *,
    content_box: tuple[int, int, int, int] | None = None,  # what CLIP sees of its samples
) -> dict[str, DomainGuidance]:
    """Per CLIP model (by name), the mixed direction and target of an image-guided job,
    computed once (see the module docstring). The generator's samples (the source domain
    without source images) are cut to `content_box` (a letterboxed generator's picture, as
    the engine's losses see it); the example images are the user's own, kept whole."""
    weight = params.effective_image_weight
    samples: Tensor | None = None
    out: dict[str, DomainGuidance] = {}
    for clip in clips:
        text_dir = text_tgt = image_dir = image_tgt = None
        if weight < 1:
            check_prompt_tokens(clip, "source_text", params.source_text)
            check_prompt_tokens(clip, "target_text", params.target_text)
            source = clip.encode_texts(template_prompts(params.source_text)).cpu()
            target = clip.encode_texts(template_prompts(params.target_text)).cpu()
            text_dir, text_tgt = text_direction(source, target), class_embedding(target)
        if weight > 0:
            kw: dict[str, Any] = {"seed": params.seed, "views": params.image_views}
            image_tgt = images_embedding(clip, files, params.target_images, **kw)
            if params.source_images:
                image_src = images_embedding(clip, files, params.source_images, **kw)
            else:
                if samples is None:
                    samples = crop_to_content(
                        generator_samples(
                            generator, latent_avg, seed=params.seed,
                            truncation=params.sample_truncation,
                        ),
                        content_box,
                    )  # fmt: skip
                image_src = mean_embedding(encode_batched(clip, samples))
            image_dir = image_direction(image_src, image_tgt)
        out[clip.name] = DomainGuidance(
            mix(text_dir, image_dir, weight), mix(text_tgt, image_tgt, weight)
        )
    return out


def domain_record(params: AdaptParams, guidance: Mapping[str, DomainGuidance]) -> dict[str, Any]:
    """What an adapted checkpoint says about its image-guided domain (plain data)."""
    return {
        "target_images": list(params.target_images),
        "source_images": list(params.source_images),
        "source": "images" if params.source_images else f"generator samples ({SOURCE_SAMPLES})",
        "image_weight": params.effective_image_weight,
        "image_views": params.image_views,
        "embeddings": {
            name: {"direction": g.direction.tolist(), "target": g.target.tolist()}
            for name, g in guidance.items()
        },
    }
