"""The API counts a prompt's CLIP tokens exactly as open_clip's tokenizer (the engine's)."""

from __future__ import annotations

import random
import string

import pytest

from backend.clip_tokens import CONTEXT_TOKENS, count_tokens, longest_template_tokens
from nada.prompts import TEMPLATES, template_prompts

API = "/api/v1"
SMALL = {"source_text": "photo", "target_text": "sketch", "generator": "random-64", "steps": 4}


def test_counts_equal_open_clips_on_random_text() -> None:
    from open_clip.tokenizer import SimpleTokenizer

    tokenizer = SimpleTokenizer()
    rng = random.Random(0)
    alphabet = string.printable[:-5] + "éü½_&;ßçй中文🙂\u0301&amp;<start_of_text>"
    for _ in range(600):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        assert count_tokens(text) == len(tokenizer.encode(text)), repr(text)
    for text in ("a photo of a dog", "x" * 300, "Ünïcödé  text", "sketch!"):
        assert count_tokens(text) == len(tokenizer.encode(text)), text


def test_the_templates_are_open_clips() -> None:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    assert len(TEMPLATES) == len(OPENAI_IMAGENET_TEMPLATES) == 80
    for text in ("cat", "a {} in braces", "x.y"):
        assert template_prompts(text) == [t(text) for t in OPENAI_IMAGENET_TEMPLATES]


def test_the_api_refuses_what_the_engine_would(client) -> None:  # type: ignore[no-untyped-def]
    """A prompt of few words but many tokens (one long word) is refused at submission,
    not after it reached a GPU; one that just fits is accepted."""
    word = "qz" * 100  # one pre-tokenizer piece, ~200 BPE tokens
    assert longest_template_tokens(word) > CONTEXT_TOKENS
    r = client.post(f"{API}/jobs", json={**SMALL, "target_text": word})
    assert r.status_code == 422, r.text
    assert "too long for CLIP" in r.json()["detail"][0]["msg"]

    fits = "qz" * 40
    while longest_template_tokens(fits) > CONTEXT_TOKENS:
        fits = fits[:-1]
    assert client.post(f"{API}/jobs", json={**SMALL, "target_text": fits}).status_code == 202


@pytest.mark.slow
def test_the_engine_agrees_at_the_edge() -> None:
    """The engine's own check (open_clip's tokenizer) draws the line at the same prompt."""
    from nada.errors import ParamError
    from worker.clip_loss import check_prompt_tokens
    from worker.clip_models import load_clip

    clip = load_clip("ViT-B-32:random", "cpu")
    fits = "qz" * 40
    while longest_template_tokens(fits) > CONTEXT_TOKENS:
        fits = fits[:-1]
    refused = fits
    while longest_template_tokens(refused) <= CONTEXT_TOKENS:
        refused += "q"
    check_prompt_tokens(clip, "target_text", fits)
    with pytest.raises(ParamError, match="too long"):
        check_prompt_tokens(clip, "target_text", refused)
