"""Validate an uploaded generator file in a child process: `python -m stylegan2.validate SRC DST`.

The API process never imports torch and never unpickles user files; `backend.uploads` runs
this module under memory and CPU-time limits. It loads SRC with `weights_only=True`
(stylegan2.checkpoint.load_generator: a state dict of tensors with exactly the keys and
shapes of a StyleGAN2 generator), checks that every weight is finite, and re-saves the
weights with `save_generator` (plain tensors and builtins, nothing of the upload's pickle
survives) to DST. It prints one JSON line: {"ok": true, "size": ..., "sha256": ...} or
{"ok": false, "error": "why"} (exit 0 / 2).
"""

from __future__ import annotations

import json
import sys

REFUSED = 2  # exit status: the file is not an acceptable generator (the JSON says why)


def validate(src: str, dst: str) -> dict:
    import torch

    from stylegan2.checkpoint import CheckpointError, load_generator, save_generator

    try:
        loaded = load_generator(src, "cpu")
    except CheckpointError as exc:
        return {"ok": False, "error": str(exc).replace(src, "the upload")}
    tensors = {**loaded.generator.state_dict(), "latent_avg": loaded.latent_avg}
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return {"ok": False, "error": f"weight {key!r} holds NaN or infinite values"}
    identity = loaded.identity
    digest = save_generator(
        dst,
        loaded.generator,
        loaded.latent_avg,
        {"source": {"sha256": identity.get("sha256"), "kind": "upload"}},
    )
    return {"ok": True, "size": int(identity["size"]), "sha256": digest}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m stylegan2.validate SRC DST", file=sys.stderr)
        return 64
    result = validate(argv[0], argv[1])
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else REFUSED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
