"""How many tokens CLIP's tokenizer makes of a prompt, without torch: the API's exact check.

The engine refuses a prompt whose longest template (nada/prompts.py) does not fit CLIP's
77-token context (worker/clip_loss.py, with open_clip's tokenizer). The API process never
imports torch, and open_clip's tokenizer module does, so this is the same byte-level BPE
computed here: the same text cleaning (ftfy, HTML unescaping, whitespace, lower case), the
same pre-tokenizer pattern, the same merges file (data/bpe_simple_vocab_16e6.txt.gz, from
OpenAI's CLIP, MIT licence). tests/backend/test_clip_tokens.py compares the counts with
open_clip's tokenizer on random text.
"""

from __future__ import annotations

import gzip
import html
from functools import lru_cache
from pathlib import Path

import ftfy
import regex

from nada.prompts import template_prompts

CONTEXT_TOKENS = 77  # CLIP's context, start and end tokens included
_MERGES_FILE = Path(__file__).resolve().parent / "data" / "bpe_simple_vocab_16e6.txt.gz"
_N_MERGES = 49152 - 256 - 2  # CLIP's vocabulary: 256 bytes x2 (with '</w>'), merges, 2 specials
_SPECIALS = ("<start_of_text>", "<end_of_text>")
_PIECES = regex.compile(
    "|".join(_SPECIALS) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


def _byte_alphabet() -> dict[int, str]:
    """Each byte as a printable character (GPT-2's table): the BPE works on these."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]  # fmt: skip
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


_BYTES = _byte_alphabet()


@lru_cache(maxsize=1)
def _merge_ranks() -> dict[tuple[str, str], int]:
    lines = gzip.decompress(_MERGES_FILE.read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _N_MERGES + 1]]
    return {(a, b): rank for rank, (a, b) in enumerate(merges)}


def clean(text: str) -> str:
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split()).lower()


@lru_cache(maxsize=8192)
def _piece_tokens(piece: str) -> int:
    """Tokens of one pre-tokenized piece: merge the best-ranked adjacent pair, everywhere
    it occurs, until no pair of the word is a known merge."""
    if piece in _SPECIALS:
        return 1
    ranks = _merge_ranks()
    symbols = "".join(_BYTES[b] for b in piece.encode("utf-8"))
    word = [*symbols[:-1], symbols[-1] + "</w>"]
    while len(word) > 1:
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        best = min(pairs, key=lambda pair: ranks.get(pair, _N_MERGES + 1))
        if best not in ranks:
            break
        merged: list[str] = []
        i = 0
        while i < len(word):
            if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return len(word)


def count_tokens(text: str) -> int:
    """Tokens CLIP makes of `text`, without the start and end tokens."""
    return sum(_piece_tokens(piece) for piece in _PIECES.findall(clean(text)))


@lru_cache(maxsize=1024)  # ~1.5 ms for 80 templates; people resubmit the same prompts
def longest_template_tokens(text: str) -> int:
    """Tokens of `text`'s longest templated prompt, start and end tokens included: what
    must fit in CONTEXT_TOKENS."""
    return max(count_tokens(prompt) for prompt in template_prompts(text)) + 2
