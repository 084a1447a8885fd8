"""The engine of a 'domain' job (jobs/kinds.py): a ready-made adapted generator
(stylegan2/domains.py) published as the job's adapted.pt, so that photos, renders and
comparisons of the job work as for a trained one.

Its file is downloaded once into the cache (or found there, or at NADA_DOMAIN_<NAME>),
read as untrusted (values checked), checked to draw at its base generator's size, and
written again in our layout with metadata that says where it came from. The base
generator is fetched too: every follow-up draws it beside the domain.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.kinds import DomainParams
from nada import rundir
from nada.errors import InputError
from nada.events import CancelCheck, Progress, ProgressCallback
from stylegan2 import domains, registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainResult:
    checkpoint: Path  # adapted.pt in the attempt's directory
    samples: tuple[()]  # nothing is trained, so there are no progress images
    checkpoint_sha256: str
    seconds: float


def load_domain_file(info: domains.DomainInfo, path: Path) -> Any:
    """The domain's file as a LoadedGenerator, refused unless it draws at its base's size.

    Raises:
        stylegan2.CheckpointError: not a generator, or weights with NaN / odd dtypes.
        InputError: a generator of another size than the base.
    """
    from stylegan2.checkpoint import load_untrusted  # torch: on the first job only

    loaded = load_untrusted(path)
    want, got = domains.base_size(info), loaded.generator.size
    if got != want:
        raise InputError(
            f"ready-made domain {info.name}: its file draws {got} px, but its base "
            f"{info.base} draws {want} px"
        )
    return loaded


def run_ready_made(
    params: DomainParams,
    out_dir: Path,
    *,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    resume_from: Path | None = None,
    models: Any = None,
) -> DomainResult:
    """Fetch `params.domain` and its base, check the file, write out_dir/adapted.pt.

    Raises:
        stylegan2.download.DownloadError: the domain's or the base's file cannot be had
            (offline: the worker words it as model_unavailable, worker/failures.py).
        stylegan2.CheckpointError / InputError: the file is not a generator of the size.
    """
    from stylegan2.checkpoint import save_generator

    del device, should_cancel, resume_from, models  # seconds of work on the CPU
    started = time.monotonic()
    emit = on_progress or (lambda event: None)
    info = domains.get_domain_info(params.domain)
    emit(Progress(kind="stage", stage="loading", step=0, total_steps=1))
    if registry.parse_random_name(info.base) is None:
        registry.resolve(info.base)  # the follow-ups need it: fail now, not at the first photo
    path = domains.resolve(info.name)
    loaded = load_domain_file(info, path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / rundir.ADAPTED
    metadata = {
        "base": {"name": info.base},
        "params": {
            "generator": info.base,
            "source_text": info.source_text,
            "target_text": info.target_text,
        },
        "source": f"ready-made: {info.name}",
        "ready_made": {
            "name": info.name,
            "url": info.url,
            "license": info.license,
            "origin": info.source,
            "sha256": loaded.identity.get("sha256"),
        },
    }
    digest = save_generator(checkpoint, loaded.generator, loaded.latent_avg, metadata)
    emit(Progress(kind="step", stage="saving", step=1, total_steps=1))
    return DomainResult(checkpoint, (), digest, time.monotonic() - started)
