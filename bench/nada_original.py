"""The original StyleGAN-NADA training step (rinongal/StyleGAN-nada: ZSSGAN/model/ZSSGAN.py,
ZSSGAN/criteria/clip_loss.py, ZSSGAN/train.py), re-implemented compactly as the baseline that
bench/adapt_step.py measures our engine against, side by side in one run.

It reproduces what the original computes in one step, not its code:

- generator: `stylegan2.Generator` with `set_reference_ops(True)`, which computes as the
  rosinality port the original builds on (grouped-conv modulation, zero-insertion
  upfirdn2d, unfused activation); two copies, frozen and trainable. Without selection the
  trainable layers are the original's default phase: the constant input, conv1 and every
  conv (no mapping network, no to_rgb).
- CLIP: the open_clip model of the same architecture (`worker.clip_models.load_clip`,
  seeded random weights), eval mode and frozen, as the original's CLIP models are since
  mid-2022: no backward computes CLIP's parameter gradients, and the frozen images' and the
  prompts' encodings carry no graph. `clip_trainable=True` reproduces the earlier code, which
  left CLIP's parameters trainable: then every backward also computes CLIP's parameter
  gradients, never zeroed (CLIP sits in a plain dict, out of reach of `net.zero_grad()`), so
  they accumulate and stay allocated, and the frozen images are encoded with a graph.
  Preprocessing: [-1, 1] -> [0, 1], bicubic resize to CLIP's size (no antialias: the
  torchvision of the time had none for tensors), center crop (a no-op on square images),
  CLIP's mean/std.
- layer selection (auto_layer_iters 1, auto_layer_batch 8, auto_layer_k k), every step:
  unfreeze every layer of the trainable generator; 8 z through the frozen mapping network,
  repeated to W+; one SGD step (lr 0.01) on the codes of the global loss, all 8 rendered
  in one forward, the loss being CLIP's full forward (image and text tower) as
  mean(1 - logits / 100); the backward computes gradients for the codes and every
  generator layer (and CLIP's parameters with clip_trainable). Layer scores |w - w0|
  averaged over style dims and batch; top k of the
  original's index -> layer list [conv1, to_rgb1, convs...]; freeze all, unfreeze those.
- training: batch z -> frozen image (no graph) and trainable image, fresh noise in each;
  directional loss 1 - cos(normalize(E(trainable) - E(frozen)), ΔT) with ΔT the
  normalised mean over the 80 ImageNet templates of normalize(E(target)) -
  normalize(E(source)), computed once (in the first step, as the original does);
  `zero_grad` on the generators, backward, Adam over all trainable-generator parameters
  (lr 0.002 * 4/5, betas (0, 0.99 ** (4/5)): train.py's g_reg_ratio).

What it cannot reproduce: OpenAI's `clip` package (open_clip builds the same architecture,
QuickGELU included, with the same tokenizer), and on CUDA the original's fp16 CLIP
(`clip.load` converts the weights to fp16 on CUDA; on the CPU it runs float32, as here).
The original also loads an RN50 CLIP per CLIP model for a texture loss that is off by
default; it is left out unless `texture_clip=True` (it only adds memory).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from torch import Tensor, nn

import stylegan2
from worker.clip_models import ClipModel, load_clip

LR = 0.002  # train.py's --lr, scaled below by g_reg_ratio as train.py does
G_REG_RATIO = 4 / 5  # g_reg_every / (g_reg_every + 1), g_reg_every = 4
PROBE_LR = 0.01  # SGD on the W+ codes


def _requires_grad(modules: Sequence[nn.Module], flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad = flag


class OriginalClipLoss:
    """CLIPLoss of the original for one CLIP model, lambda_direction 1, the rest 0."""

    def __init__(self, clip: ClipModel, texture_clip: bool = False, trainable: bool = False):
        self.model = clip.model.eval().requires_grad_(trainable)  # load_clip built it fresh
        self.tokenizer = clip.tokenizer
        self.size = clip.image_size
        self.mean, self.std = clip.mean, clip.std
        self.device = clip.device
        self.target_direction: Tensor | None = None  # [1, D], set in the first step
        self.texture_model = None
        if texture_clip:  # loaded by the original's constructor, used by lambda_texture only
            self.texture_model = load_clip("RN50:random", self.device).model
            self.texture_model.requires_grad_(trainable)

    def preprocess(self, images: Tensor) -> Tensor:
        x = (images + 1) / 2  # Normalize(mean=-1, std=2)
        if tuple(x.shape[-2:]) != tuple(self.size):
            x = F.interpolate(x, size=self.size, mode="bicubic", align_corners=False)
        return (x - self.mean) / self.std

    def text_features(self, text: str) -> Tensor:
        prompts = [template(text) for template in OPENAI_IMAGENET_TEMPLATES]
        features = self.model.encode_text(self.tokenizer(prompts).to(self.device)).detach()
        return features / features.norm(dim=-1, keepdim=True)  # [80, D]

    def image_features(self, images: Tensor) -> Tensor:
        features = self.model.encode_image(self.preprocess(images))
        return features / features.clone().norm(dim=-1, keepdim=True)

    def directional_loss(self, source: Tensor, target: Tensor, texts: tuple[str, str]) -> Tensor:
        if self.target_direction is None:
            direction = (self.text_features(texts[1]) - self.text_features(texts[0])).mean(
                dim=0, keepdim=True
            )
            self.target_direction = direction / direction.norm(dim=-1, keepdim=True)
        src, dst = self.image_features(source), self.image_features(target)
        edit = dst - src
        if edit.sum() == 0:  # as the original: nudge the image when the two embeddings agree
            edit = self.image_features(target + 1e-6) - src
        edit = edit / edit.clone().norm(dim=-1, keepdim=True)
        return (1 - F.cosine_similarity(edit, self.target_direction)).mean()

    def global_loss(self, images: Tensor, text: str) -> Tensor:
        """CLIP's whole forward, text tower included, as the original's global_clip_loss."""
        tokens = self.tokenizer([text]).to(self.device)
        image_features, text_features, logit_scale = self.model(self.preprocess(images), tokens)[:3]
        logits = logit_scale * image_features @ text_features.t()  # [N, 1]
        return (1 - logits / 100).mean()


@dataclass
class OriginalStep:
    """Figures of one step: what selection picked and the loss."""

    layers: tuple[str, ...]
    loss: float


class OriginalNada:
    """ZSSGAN's twin generators, CLIP losses and optimizer, one `step()` per training step."""

    def __init__(
        self,
        generator: str = "random-256",  # stylegan2.load_generator name or path
        clip_models: Sequence[str] = ("ViT-B-32:random",),  # weights 1 each
        source_text: str = "photo",
        target_text: str = "sketch",
        batch_size: int = 2,  # train.py --batch
        auto_layer_k: int = 10,  # 0: no selection (the original's auto_layer_iters 0)
        auto_layer_batch: int = 8,
        device: str | torch.device = "cpu",
        seed: int = 0,  # CLIP's random weights
        texture_clip: bool = False,  # also hold the original's unused RN50 CLIP
        clip_trainable: bool = False,  # the pre-mid-2022 code: CLIP's parameters not frozen
    ):
        self.device = torch.device(device)
        loaded = stylegan2.load_generator(generator, device=self.device)
        self.frozen = loaded.generator.set_reference_ops(True).eval().requires_grad_(False)
        self.trainable = copy.deepcopy(self.frozen).train()
        self.default_layers = [self.trainable.input, self.trainable.conv1, self.trainable.convs]
        self._freeze_all()
        _requires_grad(self.default_layers, True)
        self.losses = [
            OriginalClipLoss(load_clip(name, self.device, seed=seed), texture_clip, clip_trainable)
            for name in clip_models
        ]
        self.texts = (source_text, target_text)
        self.batch_size = batch_size
        self.auto_layer_k = auto_layer_k
        self.auto_layer_batch = auto_layer_batch
        self.optimizer = torch.optim.Adam(
            self.trainable.parameters(),
            lr=LR * G_REG_RATIO,
            betas=(0**G_REG_RATIO, 0.99**G_REG_RATIO),
        )

    def _all_layers(self) -> list[nn.Module]:
        return list(self.trainable.children())

    def _freeze_all(self) -> None:
        _requires_grad(self._all_layers(), False)

    def determine_opt_layers(self) -> list[nn.Module]:
        z = torch.randn(self.auto_layer_batch, self.frozen.style_dim, device=self.device)
        initial = self.frozen.style(z).unsqueeze(1).repeat(1, self.frozen.n_latent, 1)
        codes = initial.detach().clone().requires_grad_(True)  # [8, n_latent, style_dim]
        optimizer = torch.optim.SGD([codes], lr=PROBE_LR)
        images, _ = self.trainable([codes], input_is_latent=True)  # all 8 in one forward
        loss = torch.stack([clip.global_loss(images, self.texts[1]) for clip in self.losses])
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        weights = (codes.detach() - initial).abs().mean(dim=-1).mean(dim=0)  # [n_latent]
        chosen = torch.topk(weights, self.auto_layer_k)[1].tolist()
        idx_to_layer = [self.trainable.conv1, self.trainable.to_rgb1, *self.trainable.convs]
        return [idx_to_layer[i] for i in chosen]

    def step(self) -> OriginalStep:
        """One iteration of train.py's loop (no sample writing)."""
        layers = self.default_layers
        if self.auto_layer_k > 0:
            _requires_grad(self._all_layers(), True)
            layers = self.determine_opt_layers()
            self._freeze_all()
            _requires_grad(layers, True)
        z = torch.randn(self.batch_size, self.frozen.style_dim, device=self.device)
        with torch.no_grad():
            w = self.frozen.style(z)
            frozen_img, _ = self.frozen([w], input_is_latent=True)
        trainable_img, _ = self.trainable([w], input_is_latent=True)
        loss = torch.stack(
            [clip.directional_loss(frozen_img, trainable_img, self.texts) for clip in self.losses]
        ).sum()
        self.trainable.zero_grad()  # net.zero_grad(): the generators, not CLIP
        self.frozen.zero_grad()
        loss.backward()
        self.optimizer.step()
        names = {id(m): n for n, m in self.trainable.named_modules()}
        return OriginalStep(tuple(names[id(m)] for m in layers), float(loss.detach()))


def timed_steps(nada: OriginalNada, steps: int) -> tuple[list[float], list[float]]:
    """Wall and process CPU seconds of `steps` steps."""
    wall, cpu = [], []
    for _ in range(steps):
        if nada.device.type == "cuda":
            torch.cuda.synchronize(nada.device)
        t0, c0 = time.perf_counter(), time.process_time()
        nada.step()
        if nada.device.type == "cuda":
            torch.cuda.synchronize(nada.device)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu
