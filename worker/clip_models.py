"""Frozen CLIP models through open_clip, and the differentiable path from generator images to
CLIP's input.

StyleGAN-NADA (Gal et al., 2021, sec. 3 and appendix I) guides the generator with one or more
frozen CLIP models; the paper's default is ViT-B/32 + ViT-B/16 with OpenAI's weights. Any
open_clip `arch:pretrained` pair works here; the tag `random` builds the architecture with
seeded random weights and downloads nothing, so tests and offline demos run anywhere.

Besides open_clip's own architectures this module keeps a small registry of extra configs
(`add_clip_config`); `nada-tiny` is one of them: a two-layer ViT + text transformer with the
real tokenizer, random weights only, fast enough for unit tests and service CI.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jobs.availability import CLIP_HF_FILES, cached_hf_file, hf_hub_cache
from nada.catalog import CLIP_MODELS, RANDOM_TAG, split_clip_name
from nada.errors import ParamError
from stylegan2.download import OFFLINE_ENV, DownloadError, downloads_off

log = logging.getLogger(__name__)

TINY_CLIP = "nada-tiny"

# Extra architectures, built with open_clip.model.CLIP (random weights only). Same schema as
# open_clip's model_configs/*.json.
_EXTRA_CONFIGS: dict[str, dict[str, Any]] = {
    TINY_CLIP: {
        "embed_dim": 64,
        "vision_cfg": {
            "image_size": 32,
            "layers": 2,
            "width": 64,
            "head_width": 32,
            "patch_size": 8,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 64,
            "heads": 2,
            "layers": 2,
        },
    },
}


def add_clip_config(name: str, config: dict[str, Any]) -> None:
    """Register an extra CLIP architecture (open_clip config schema), usable as 'name:random'."""
    if not all(key in config for key in ("embed_dim", "vision_cfg", "text_cfg")):
        raise ValueError("a CLIP config needs embed_dim, vision_cfg and text_cfg")
    _EXTRA_CONFIGS[name] = copy.deepcopy(config)


def list_clip_architectures() -> list[str]:
    """Every architecture name `load_clip` accepts: open_clip's and the extra ones."""
    return [*open_clip.list_models(), *_EXTRA_CONFIGS]


def canonical_clip_name(name: str) -> str:
    """'ViT-B/32' -> 'ViT-B-32:openai' (the key models are cached and reported under)."""
    arch, tag = split_clip_name(name)
    return f"{arch}:{tag}"


@dataclass
class ClipModel:
    """One frozen CLIP model with what it needs to read generator images and prompts.

    name: canonical 'arch:pretrained' name ('ViT-B-32:openai').
    model: the open_clip model, eval mode, requires_grad False everywhere.
    tokenizer: open_clip tokenizer (list[str] -> LongTensor [T, context_length]).
    image_size: (height, width) of CLIP's input.
    mean, std: CLIP's normalisation, [1, 3, 1, 1] on the model's device.
    context_length: tokens the text tower reads, start and end tokens included.
    autocast: dtype to run the towers in on CUDA (torch.bfloat16), or None for float32
        (TF32 matmuls where the engine enables them). None by default: the directional loss
        subtracts the embeddings of two nearly equal images, and bf16 rounds each embedding
        to 8 significant bits; CLIP is also a small part of a step's cost at 256-1024 px.
        bench/adapt_step.py --clip-bf16 measures the alternative.
    """

    name: str
    model: Any  # an open_clip nn.Module; Any because open_clip ships no type information
    tokenizer: Callable[..., Tensor]
    image_size: tuple[int, int]
    mean: Tensor
    std: Tensor
    context_length: int
    autocast: torch.dtype | None = None

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def encode_images(self, images: Tensor) -> Tensor:
        """Generator images [N, 3, H, W] in [-1, 1] -> image embeddings [N, D] (float32,
        not normalised), differentiable with respect to `images`."""
        x = to_clip_input(images, self.image_size, self.mean, self.std)
        with _autocast(x.device, self.autocast):
            features = self.model.encode_image(x)
        return features.float()

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """Prompts -> text embeddings [T, D] (float32, not normalised)."""
        tokens = self.tokenizer(list(texts)).to(self.device)  # [T, context_length]
        with _autocast(self.device, self.autocast):
            features = _encode_text_trimmed(self.model, tokens)
        return features.float()

    def count_tokens(self, text: str) -> int | None:
        """Tokens `text` takes in the context, start and end included (None if the tokenizer
        cannot tell: the caller then skips the length check)."""
        encode = getattr(self.tokenizer, "encode", None)
        if encode is None:
            return None
        return len(encode(text)) + 2


def to_clip_input(images: Tensor, size: tuple[int, int], mean: Tensor, std: Tensor) -> Tensor:
    """[-1, 1] generator images -> CLIP input, differentiably.

    The reference (the NADA code's clip_preprocess) maps [-1, 1] to [0, 1], resizes with
    bicubic interpolation and normalises with CLIP's mean/std. Antialiasing matters when a
    1024-px image shrinks to 224: without it the loss sees aliased high frequencies that the
    generator learns to game. A non-square image (a letterboxed generator's content box, LSUN
    car's 512x384) is treated as CLIP's own preprocessing does: the short side resized to
    the input size, then the centre cropped; a square one is simply resized.
    """
    x = (images + 1) * 0.5  # [N, 3, H, W] in [0, 1]
    h, w = x.shape[-2:]
    out_h, out_w = size
    if h != w and out_h == out_w:  # Resize(short side) then CenterCrop, as clip_preprocess
        scale = out_h / min(h, w)
        resized = (max(out_h, round(h * scale)), max(out_w, round(w * scale)))
        x = F.interpolate(x, size=resized, mode="bicubic", align_corners=False, antialias=True)
        top, left = (resized[0] - out_h) // 2, (resized[1] - out_w) // 2
        x = x[..., top : top + out_h, left : left + out_w]
    elif (h, w) != (out_h, out_w):
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    return (x - mean) / std


def _encode_text_trimmed(model: Any, tokens: Tensor) -> Tensor:
    """open_clip's CLIP.encode_text, run on only as many positions as the longest prompt uses.

    The text tower is causal and pools at the end token, so the padding after it cannot change
    the result; prompt templates are ~15 of 77 tokens, so this is ~5x less work (seconds per
    job on a CPU). Models of any other kind go through their own encode_text.
    """
    if type(model) is not open_clip.model.CLIP or model.text_pool_type != "argmax":
        return model.encode_text(tokens)
    length = int(tokens.argmax(dim=-1).max()) + 1  # the end token has the highest id
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)  # [T, L, width]
    x = x + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]  # [T, width]
    if isinstance(model.text_projection, nn.Linear):
        return model.text_projection(x)
    return x @ model.text_projection if model.text_projection is not None else x


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    """Mixed precision on CUDA when asked; a no-op otherwise (bf16 matmuls are slow on CPUs)."""
    enabled = dtype is not None and device.type == "cuda"
    return torch.autocast("cuda", dtype=dtype or torch.bfloat16, enabled=enabled)


def check_clip_name(name: str) -> tuple[str, str]:
    """(arch, pretrained) for a name `load_clip` can build, without building anything;
    ParamError naming clip_models otherwise."""
    arch, tag = split_clip_name(name)
    if arch not in _EXTRA_CONFIGS and arch not in open_clip.list_models():
        common = [*CLIP_MODELS, *_EXTRA_CONFIGS]
        raise ParamError(
            "clip_models",
            f"has unknown architecture {arch!r}; known: {', '.join(common)} "
            "and the rest of open_clip.list_models()",
        )
    if tag == RANDOM_TAG:
        return arch, tag
    if arch in _EXTRA_CONFIGS:
        raise ParamError("clip_models", f"{arch} has random weights only (use '{arch}:random')")
    if not open_clip.get_pretrained_cfg(arch, tag) and not os.path.isfile(tag):
        tags = ", ".join([*open_clip.list_pretrained_tags_by_model(arch), RANDOM_TAG])
        raise ParamError("clip_models", f"has unknown weights {tag!r} for {arch}; known: {tags}")
    return arch, tag


def load_clip(name: str, device: str | torch.device = "cpu", *, seed: int = 0) -> ClipModel:
    """Build one frozen CLIP model.

    Args:
        name: 'arch' or 'arch:pretrained' (OpenAI spellings such as 'ViT-B/32' accepted);
            pretrained is an open_clip tag (default 'openai') or a local weights file;
            'random' means seeded random weights.
        device: where the model lives.
        seed: seeds the random weights of the 'random' tag (ignored for real weights).

    Returns:
        The frozen model and its preprocessing.

    Example:
        >>> clip = load_clip("ViT-B-32:random", seed=0)
        >>> clip.encode_images(torch.zeros(1, 3, 256, 256)).shape
        torch.Size([1, 512])
    """
    arch, tag = check_clip_name(name)
    device = torch.device(device)
    log.info("loading CLIP %s:%s on %s", arch, tag, device)
    model: Any = _random_clip(arch, seed) if tag == RANDOM_TAG else _pretrained_clip(arch, tag)
    model = model.to(device).eval().requires_grad_(False)

    preprocess = open_clip.get_model_preprocess_cfg(model)
    size = preprocess.get("size", model.visual.image_size)
    size = (size, size) if isinstance(size, int) else tuple(size)
    mean = torch.tensor(preprocess.get("mean", open_clip.OPENAI_DATASET_MEAN), device=device)
    std = torch.tensor(preprocess.get("std", open_clip.OPENAI_DATASET_STD), device=device)
    if arch in _EXTRA_CONFIGS:
        context = _EXTRA_CONFIGS[arch]["text_cfg"].get("context_length", 77)
        tokenizer = open_clip.SimpleTokenizer(context_length=context)
    else:
        tokenizer = open_clip.get_tokenizer(arch)
        context = int(getattr(tokenizer, "context_length", None) or model.context_length)
    return ClipModel(
        name=f"{arch}:{tag}",
        model=model,
        tokenizer=tokenizer,
        image_size=(int(size[0]), int(size[1])),
        mean=mean.view(1, 3, 1, 1).float(),
        std=std.view(1, 3, 1, 1).float(),
        context_length=context,
    )


def _quick_gelu(arch: str, tag: str) -> bool:
    """OpenAI's CLIPs use QuickGELU; open_clip's configs default to GELU and rely on the
    pretrained tag to say so. Random weights follow the architecture's OpenAI variant so that
    a random model costs what the real one costs."""
    cfg = open_clip.get_pretrained_cfg(arch, tag) or open_clip.get_pretrained_cfg(arch, "openai")
    return bool((cfg or {}).get("quick_gelu", False))


def _random_clip(arch: str, seed: int) -> nn.Module:
    """Architecture with random weights from `seed`, built on the CPU so that the same seed
    gives the same weights on any device. Nothing is downloaded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch in _EXTRA_CONFIGS:
            cfg = copy.deepcopy(_EXTRA_CONFIGS[arch])
            model = open_clip.model.CLIP(**cfg)
            open_clip.set_model_preprocess_cfg(
                model,
                {
                    "size": cfg["vision_cfg"]["image_size"],
                    "mean": open_clip.OPENAI_DATASET_MEAN,
                    "std": open_clip.OPENAI_DATASET_STD,
                },
            )
            return model
        return open_clip.create_model(
            arch, pretrained=None, force_quick_gelu=_quick_gelu(arch, RANDOM_TAG)
        )


_HF_ENDPOINT = "https://huggingface.co"  # huggingface_hub's default; $HF_ENDPOINT overrides
_REACH_TIMEOUT = 5.0  # seconds to reach the hub before a download is given up


def _pretrained_clip(arch: str, tag: str) -> nn.Module:
    """open_clip's model with the `tag` weights: a local file, the copy in the Hugging Face
    cache (loaded straight from its path: no request to the hub), else a download.

    A download that cannot happen fails in seconds as a DownloadError (the job's
    `model_unavailable`): downloads off (HF_HUB_OFFLINE, NADA_OFFLINE), or the hub not
    reachable. Left to itself, huggingface_hub retries each of open_clip's two file names
    five times with backoff offline: close to a minute before the job failed."""
    name = f"{arch}:{tag}"
    local = tag if os.path.isfile(tag) else _cached_weights(arch, tag)
    if local is not None:
        try:
            return _create(arch, tag, str(local))
        except Exception as exc:  # a damaged or foreign file: torch's and open_clip's errors
            raise RuntimeError(f"could not load CLIP weights {name} from {local}: {exc}") from exc
    _check_downloadable(arch, tag)
    try:
        return _create(arch, tag, tag)
    except (RuntimeError, FileNotFoundError) as exc:
        raise DownloadError(
            f"could not download CLIP weights {name} ({exc}); offline, use '{arch}:random' "
            "or put the weights in the Hugging Face cache on a machine with network access",
            model=name,
        ) from exc


def _create(arch: str, tag: str, pretrained: str) -> nn.Module:
    return open_clip.create_model(
        arch, pretrained=pretrained, force_quick_gelu=_quick_gelu(arch, tag),
        require_pretrained=True,
    )  # fmt: skip


def _cached_weights(arch: str, tag: str) -> Path | None:
    """The weights file of `arch:tag` in the Hugging Face cache, where open_clip's
    pretrained config names a hub repository (open_clip.pretrained.download_pretrained)."""
    hub = (open_clip.get_pretrained_cfg(arch, tag) or {}).get("hf_hub", "")
    if not hub:
        return None
    repo, filename = os.path.split(hub)  # 'org/name/': open_clip's default file names
    names = (filename,) if filename else CLIP_HF_FILES
    safe = tuple(
        n.rsplit(".", 1)[0] + ".safetensors" for n in names if n.endswith((".bin", ".pth"))
    )
    return cached_hf_file(repo, (*safe, *names))


def _check_downloadable(arch: str, tag: str) -> None:
    """Raise DownloadError at once when `arch:tag` cannot be downloaded now."""
    name = f"{arch}:{tag}"
    instead = (
        f"use '{arch}:random' (random weights) or a model whose weights are cached; to "
        f"install these, run load_clip('{name}') once on a machine with network access and "
        f"copy its Hugging Face cache ({hf_hub_cache()}) here"
    )
    if downloads_off():
        raise DownloadError(
            f"CLIP weights {name} are not in the Hugging Face cache and downloads are off "
            f"({OFFLINE_ENV} or HF_HUB_OFFLINE is set); {instead}",
            model=name,
        )
    endpoint = os.environ.get("HF_ENDPOINT") or _HF_ENDPOINT
    url = urllib.parse.urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=_REACH_TIMEOUT).close()
    except OSError as exc:
        raise DownloadError(
            f"CLIP weights {name} are not in the Hugging Face cache and {endpoint} cannot be "
            f"reached ({exc}); {instead}",
            model=name,
        ) from exc
