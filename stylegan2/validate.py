"""Validate an uploaded generator file in a child process: `python -m stylegan2.validate SRC DST`.

The API process never imports torch and never unpickles user files;
`backend.generator_validation` runs this module under memory and CPU-time limits. First, without torch, a zip archive (what
`torch.save` writes) is checked from its central directory alone: how many records, and how
many bytes each declares once decompressed, against what a generator can need
(`check_archive`), so a small file that would inflate to gigabytes is refused before a byte
of it is decompressed. Then SRC is loaded with `weights_only=True`
(stylegan2.checkpoint.load_untrusted: a state dict with exactly the keys and shapes of a
StyleGAN2 generator, float32/float16/bfloat16 weights, all finite), and the weights are
re-saved with `save_generator` (plain tensors and builtins, nothing of the upload's pickle
survives) to DST. It prints one JSON line: {"ok": true, "size": ..., "sha256": ..., "family": ...} or
{"ok": false, "error": "why"}, plus "disk_full": true when writing DST ran out of space
(exit 0 / 2).
"""

from __future__ import annotations

import errno
import json
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from stylegan2.sniff import ZIP_MAGIC

REFUSED = 2  # exit status: the file is not an acceptable generator (the JSON says why)

# Bounds on a zip archive, read off its central directory. The largest generator is 1024 px:
# rosinality's config-f at that size has 171 tensors, 126.5 MiB in float32, none over 9 MiB
# (tests/backend/uploads/test_limits.py checks these bounds against the model).
MAX_TOTAL_BYTES = 512 << 20  # all records, decompressed: ~4x config-f 1024, room for a
#                              converted file that also carries `g` and `d`
MAX_RECORD_BYTES = 64 << 20  # one tensor's record (channel_multiplier 4 at 1024 px: 36 MiB)
MAX_PICKLE_BYTES = 8 << 20  # the `*/data.pkl` record (config-f 1024: ~20 KiB)
MAX_ENTRIES = 4096  # records in the archive (config-f 1024 g_ema: 176)
MAX_DIRECTORY_BYTES = 4 << 20  # the central directory, checked before Python parses it

_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator
_END64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record


class ArchiveRefused(ValueError):
    """The archive declares more than a generator can need; str() says what (user-safe)."""


def _mib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


def _directory_size(f: BinaryIO) -> int | None:
    """The central directory's size in bytes as the end record declares it (zip64 too);
    None when there is no end record."""
    f.seek(0, 2)
    size = f.tell()
    tail_len = min(size, _END.size + 0xFFFF + _END64_LOCATOR.size)  # comment <= 64 KiB
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        return None
    directory = _END.unpack_from(tail, at)[5]
    locator = at - _END64_LOCATOR.size
    if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        f.seek(_END64_LOCATOR.unpack_from(tail, locator)[2])
        record = f.read(_END64.size)
        if len(record) == _END64.size and record[:4] == b"PK\x06\x06":
            directory = _END64.unpack(record)[8]
    return int(directory)


def check_archive(path: str | Path) -> None:
    """Refuse a zip archive whose declared sizes no StyleGAN2 generator needs.

    Reads only the end record and the central directory (never a record's data): first the
    directory's own size, then the number of records, each record's decompressed size
    (`*/data.pkl` against MAX_PICKLE_BYTES, any other against MAX_RECORD_BYTES) and their
    total against MAX_TOTAL_BYTES. A file that is not a zip archive (a legacy torch.save
    file, a plain pickle, anything else) passes: it is not decompressed, and the loader
    says what is wrong with it. Raises ArchiveRefused.
    """
    with open(path, "rb") as f:
        if f.read(4) != ZIP_MAGIC:
            return
        directory = _directory_size(f)
        if directory is None:
            raise ArchiveRefused(
                "the upload is not a PyTorch checkpoint (truncated or corrupted: its zip "
                "archive has no central directory)"
            )
        if directory > MAX_DIRECTORY_BYTES:
            raise ArchiveRefused(
                f"the upload's zip archive has a {_mib(directory)} central directory; a "
                f"StyleGAN2 generator's has at most {_mib(MAX_DIRECTORY_BYTES)}"
            )
        try:
            with zipfile.ZipFile(f) as archive:
                records = archive.infolist()
        except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:  # a bad directory
            raise ArchiveRefused(
                f"the upload is not a PyTorch checkpoint (truncated or corrupted: {exc})"
            ) from None
    if len(records) > MAX_ENTRIES:
        raise ArchiveRefused(
            f"the upload's zip archive has {len(records)} records; a StyleGAN2 generator "
            f"file has at most {MAX_ENTRIES}"
        )
    total = 0
    for record in records:
        pickle = record.filename.endswith("/data.pkl") or record.filename == "data.pkl"
        cap = MAX_PICKLE_BYTES if pickle else MAX_RECORD_BYTES
        if record.file_size > cap:
            raise ArchiveRefused(
                f"record {record.filename[:80]!r} of the upload declares "
                f"{_mib(record.file_size)} once decompressed; "
                + (
                    f"a StyleGAN2 generator's pickle needs at most {_mib(cap)}"
                    if pickle
                    else f"no tensor of a StyleGAN2 generator up to 1024 px needs over {_mib(cap)}"
                )
            )
        total += record.file_size
    if total > MAX_TOTAL_BYTES:
        raise ArchiveRefused(
            f"the upload declares {_mib(total)} of data once decompressed; a StyleGAN2 "
            f"generator up to 1024 px needs at most {_mib(MAX_TOTAL_BYTES)}"
        )


def validate(src: str, dst: str) -> dict[str, Any]:
    try:
        check_archive(src)
    except ArchiveRefused as exc:
        return {"ok": False, "error": str(exc)}

    from stylegan2.checkpoint import CheckpointError, load_untrusted, save_generator

    try:
        loaded = load_untrusted(src)
    except CheckpointError as exc:
        return {"ok": False, "error": str(exc).replace(src, "the upload")}
    identity = loaded.identity
    try:
        digest = save_generator(
            dst,
            loaded.generator,
            loaded.latent_avg,
            {"source": {"sha256": identity.get("sha256"), "kind": "upload"}},
        )
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        return {"ok": False, "error": "the disk is full", "disk_full": True}
    return {"ok": True, "size": int(identity["size"]), "sha256": digest, "family": loaded.family}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m stylegan2.validate SRC DST", file=sys.stderr)
        return 64
    result = validate(argv[0], argv[1])
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else REFUSED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
