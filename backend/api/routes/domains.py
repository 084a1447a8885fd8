"""/domains: ready-made adapted generators (stylegan2/domains.py), and a finished job made
of one without training.

POST /domains/{name}/jobs queues a 'domain' job on the fast lane (jobs/kinds.py): the
worker fetches the file and publishes it as the job's adapted.pt (worker/ready_made.py),
after which the job takes photos, renders and comparisons like a trained one; a
continuation is refused (it has no resume.pt). Once per token and domain: asking again
answers the existing job (a failed one does not count).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, status

from backend.api.deps import SettingsDep
from backend.api.job_views import public_job
from backend.api.submission import SubmissionDep, submission_responses
from backend.api.upload_errors import unprocessable
from backend.schemas.domains import DomainPublic, DomainsPublic
from backend.schemas.jobs import JobPublic, job_url
from backend.schemas.priority import PRIORITY_DESCRIPTION
from jobs import availability
from jobs.kinds import DOMAIN, DomainParams
from jobs.priority import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY
from jobs.settings import Settings
from stylegan2 import domains

router = APIRouter(prefix="/domains", tags=["domains"])


def domain_availability(
    info: domains.DomainInfo, settings: Settings
) -> availability.ModelAvailability:
    """The domain's file and its base generator together: the worse of the two, with the
    note of the one at fault."""
    own = availability.of_file(domains.DOMAINS.status(info.name))
    base = availability.generator(info.base, settings.data_dir)
    if not base.usable:
        return availability.ModelAvailability("manual", f"base generator {info.base}: {base.note}")
    if own.availability == "cached" and base.availability != "cached":
        return availability.ModelAvailability(
            "downloadable", f"base generator {info.base}: {base.note}"
        )
    return own


def _public(info: domains.DomainInfo, settings: Settings) -> DomainPublic:
    state = domain_availability(info, settings)
    return DomainPublic(
        name=info.name,
        description=info.description,
        base=info.base,
        size=domains.base_size(info),
        source_text=info.source_text,
        target_text=info.target_text,
        domain=info.domain,
        url=info.url,
        license=info.license,
        source=info.source,
        notes=info.notes,
        size_mb=info.size_mb,
        availability=state.availability,
        availability_note=state.note,
    )


@router.get("", response_model=DomainsPublic)
def read_domains(settings: SettingsDep) -> DomainsPublic:
    """Every ready-made domain: base generator, prompts, license, and its `availability` on
    this server (its file and its base's; a job naming a manual one is refused)."""
    data = [_public(info, settings) for info in domains.list_domains()]
    return DomainsPublic(data=data, count=len(data))


@router.post(
    "/{name}/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobPublic,
    responses=submission_responses(
        "domain job",
        {
            404: {"description": "No such ready-made domain"},
            422: {"description": "The domain or its base cannot be had on this server"},
        },
        again="This domain was asked for before: that job",
    ),
)
def create_domain_job(
    name: str,
    sub: SubmissionDep,
    priority: int = Query(
        DEFAULT_PRIORITY,
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description=PRIORITY_DESCRIPTION,
    ),
) -> JobPublic:
    """A job that publishes the ready-made domain `name` as its adapted generator (no
    training; seconds once the file is here). When it has succeeded, use it like a
    finished adaptation: photos, renders, comparisons, its checkpoint."""
    if name not in domains.domain_names():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown ready-made domain {name!r}; known: {', '.join(domains.domain_names())}",
        )
    info = domains.get_domain_info(name)
    state = domain_availability(info, sub.settings)
    if not state.usable:
        raise unprocessable("name", f"ready-made domain {name!r}: {state.note}")
    params = DomainParams.from_dict({"domain": name})
    job = sub.cached_or_new(
        DOMAIN, params, params.cache_key(), job_url, None, sub.priority(priority)
    )
    public = public_job(sub.session, sub.settings, job)
    sub.session.close()
    return public
