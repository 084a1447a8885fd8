"""What every POST that queues work shares: one dependency and one table of answers.

A new job of any kind (an adaptation, a sweep's jobs, a continuation, an inversion, an
edit, a render) is admitted the same way (507 while the disk cannot take its files, 429
past the token's limits), is dispatched to its lane only after the response (a worker must
find the committed row, and the client need not wait for the broker; the reaper re-sends
what was never dispatched), together with the concurrent submissions' (GroupDispatch), and is named by a Location header. A request the service has
answered before (the same render or edit, a repeated Idempotency-Key) gets 200 and the
earlier job's Location instead. A job whose models this server can neither find nor
download is refused at once with 422 naming the field (`check_models`), not queued to fail.

No `from __future__ import annotations` here: FastAPI reads the dependency's parameter
annotations (`_submission`'s) to build it.
"""

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, HTTPException, Request, Response, status

from backend.api.deps import CurrentOwner, QueueDep, SessionDep, SettingsDep
from backend.api.job_views import admit, check_disk, view_cache
from backend.api.upload_errors import unprocessable
from backend.schemas.priority import PriorityFields
from backend.schemas.webhooks import WebhookFields
from invert import weights
from jobs import availability, gc, store
from jobs.availability import ModelAvailability, ModelUnavailable, unavailable
from jobs.db.models import Job
from jobs.db.session import one_writer
from jobs.kinds import JobKind
from jobs.queue import JobQueue
from jobs.retention import FilesExpired
from jobs.webhooks import outbox, targets
from nada.params import AdaptParams
from nada.photo_params import InvertParams, encoder_source

TOO_MANY = "Too many active jobs or submissions; see Retry-After"
DISK_FULL = "The data directory is full or not writable; try again later"
OVER_QUOTA = "This token's jobs use its disk quota (code quota_exceeded, with the figures)"


def submission_responses(
    what: str,
    errors: Mapping[int | str, str | dict[str, Any]],
    *,
    again: str | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a POST that queues `what`: 200 when `again` says which
    earlier request is answered instead, 202 with its Location, the route's own `errors`
    (a description, or an OpenAPI response object), and the 429 and 507 every submission
    can meet (unless `errors` words them itself)."""
    table: dict[int | str, dict[str, Any]] = {}
    if again is not None:
        table[200] = {"description": again}
    table[202] = {"headers": {"Location": {"description": f"the {what}'s URL"}}}
    for code, answer in {403: OVER_QUOTA, 429: TOO_MANY, 507: DISK_FULL, **errors}.items():
        table[code] = {"description": answer} if isinstance(answer, str) else answer
    return dict(sorted(table.items(), key=lambda item: str(item[0])))


def weight_availability(name: str) -> ModelAvailability:
    """An auxiliary model file's availability on this server (invert/weights.py)."""
    return availability.of_file(weights.WEIGHTS.status(name))


def alignment_availability() -> ModelAvailability:
    """Whether photos can be aligned here: the worst of the face detector's files."""
    states = [weight_availability(name) for name in weights.ALIGNMENT]
    return next((s for s in states if not s.usable), None) or next(
        (s for s in states if s.availability == "downloadable"), states[0]
    )


def check_models(params: AdaptParams | InvertParams, data_dir: Path) -> None:
    """Refuse a job whose models this server cannot use: neither here nor downloadable
    (jobs/availability.py). Cheap: it stats files, it hashes none. An adaptation's
    generator and CLIP models; a photo's generator, with `align` the face detector and the
    encoder it would load.

    Raises:
        ModelUnavailable (a ParamError): naming `generator`, `clip_models`, `align` or
            `encoder`, with what the user can pick instead; the routes answer 422.
    """
    if isinstance(params, AdaptParams):
        availability.check_adapt(params, data_dir)
        return
    availability.require_generator(params.generator, data_dir)
    if params.align:
        state = alignment_availability()
        if not state.usable:
            raise ModelUnavailable(
                "align",
                f"needs {weights.WHAT[weights.S3FD.name]}, which this server cannot use: "
                f"{state.note}; {weights.INSTEAD[weights.S3FD.name]}",
            )
    encoder = encoder_source(params.encoder, weights.encoder_for(params.generator))
    if encoder in weights.WEIGHTS.names():
        state = weight_availability(encoder)
        if not state.usable:
            raise unavailable(
                "encoder", weights.WHAT.get(encoder, encoder), state, weights.INSTEAD[encoder]
            )


class GroupDispatch:
    """Dispatches of concurrent submissions, made together (group commit): a caller that
    finds no dispatch running becomes the leader and sends what is waiting, its own and
    whatever arrives while it sends, batch after batch, until nothing is left (per lane,
    JobQueue.dispatch: one broker transaction on the embedded broker, jobs/broker.py);
    a caller that finds a leader leaves its jobs to it and returns at once.

    So fifty concurrent submissions cost a few publishes instead of fifty, and their
    background tasks do not hold request threads waiting for the leader (with 12 threads,
    waiting followers had starved the routes). The rows already say dispatched
    (store.create_job(dispatched=True)); a job the broker refuses is unmarked and the
    reaper sends it after its grace period, and one lost with the process (a crash between
    the commit and the publish) is found by the reaper's lost-message check
    (jobs/queue.py lost_messages)."""

    def __init__(self, queue: JobQueue):
        self._queue = queue
        self._lock = threading.Lock()
        self._waiting: list[tuple[list[str], str]] = []  # (job ids, lane)
        self._leading = False

    def dispatch(self, job_ids: list[str], lane: str) -> None:
        with self._lock:
            self._waiting.append((job_ids, lane))
            if self._leading:
                return  # the leader sends it with its next batch
            self._leading = True
        try:
            while True:
                with self._lock:
                    batch, self._waiting = self._waiting, []
                    if not batch:
                        self._leading = False
                        return
                lanes: dict[str, list[str]] = {}
                for ids, lane_of in batch:
                    lanes.setdefault(lane_of, []).extend(ids)
                for lane_of, ids in lanes.items():  # their rows say dispatched (Submission)
                    self._queue.dispatch(ids, lane_of, marked=True)
        except BaseException:
            with self._lock:  # the next submission leads (the reaper covers this batch)
                self._leading = False
            raise


_GROUPS_LOCK = threading.Lock()


def group_dispatch(request: Request, queue: JobQueue) -> GroupDispatch:
    """The app's GroupDispatch of `queue` (made on first use)."""
    state = request.app.state
    group: GroupDispatch | None = getattr(state, "group_dispatch", None)
    if group is None or group._queue is not queue:
        with _GROUPS_LOCK:
            group = getattr(state, "group_dispatch", None)
            if group is None or group._queue is not queue:
                group = state.group_dispatch = GroupDispatch(queue)
    return group


class Submission:
    """The request-scoped parts of a submission (one FastAPI dependency: SubmissionDep)."""

    def __init__(
        self,
        request: Request,
        session: SessionDep,
        settings: SettingsDep,
        queue: QueueDep,
        owner: CurrentOwner,
        response: Response,
        background: BackgroundTasks,
    ) -> None:
        self.request = request
        self.session = session
        self.settings = settings
        self.queue = queue
        self.owner = owner
        self.response = response
        self.background = background

    @property
    def who(self) -> str:
        """The owner as stored on a job ('' when the service has no tokens)."""
        return self.owner or ""

    def webhook(self, body: WebhookFields) -> store.Webhook | None:
        """The request's webhook, checked (jobs/webhooks/targets.py: https, resolved once,
        no loopback, private or link-local address unless the operator allows it); 422
        naming `webhook` otherwise. Runs in the request's thread: the lookup blocks."""
        if body.webhook is None:
            return None
        try:
            targets.resolve(body.webhook, self.settings.webhook_allowance)
        except targets.TargetRefused as exc:
            raise unprocessable("webhook", f"webhook {exc}") from None
        events = tuple(body.webhook_events or outbox.DEFAULT_EVENTS)
        return store.Webhook(body.webhook, events)

    def priority(self, body: PriorityFields | int) -> int:
        """The request's queue priority (its range checked by the schema: 422), or 403
        naming `priority` and the cap when it is over what this token may ask for
        (NADA_MAX_PRIORITY, NADA_TOKEN_MAX_PRIORITY: jobs/priority.py)."""
        value = body if isinstance(body, int) else body.priority
        cap = self.settings.priority_cap(self.owner)
        if value > cap:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"priority {value} is over this token's cap of {cap} (set by the operator: "
                "NADA_MAX_PRIORITY, NADA_TOKEN_MAX_PRIORITY)",
            )
        return value

    def _refuse_expired(self, job_ids: tuple[str, ...]) -> None:
        """410 (FilesExpired) if one of `job_ids` lost its files to retention."""
        for job_id in gc.expired_inputs(self.session, job_ids):
            raise FilesExpired(job_id, "results")

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around the submission's one write transaction, from its rows' INSERTs to the
        commit: this process's writers take turns (jobs/db/session.py one_writer). Its jobs
        are made with store.create_job(dispatched=True): the row, its `queued` event and the
        dispatch mark are that one transaction, and `queued` publishes after the response."""
        with one_writer(self.settings.db_url):
            yield

    def admit(self, count: int = 1) -> None:
        """507 while the data directory cannot take new files, 403 past this token's disk
        quota, then 429 past its limits on `count` new jobs (docs/security.md)."""
        check_disk(self.settings)
        gc.check_quota(self.session, self.who, self.settings.disk_quota_bytes)
        admit(self.request, self.session, self.settings, self.owner, count)

    def queued(
        self, job_ids: list[str], kind: JobKind, location: str, lane: str | None = None
    ) -> None:
        """Call after the commit: dispatch `job_ids` (jobs of `kind`) to `lane` (default:
        the kind's) once the response is sent, and name what was made in Location. A
        continuation's parent has a new child: this process's cached view of it goes, with
        the lists and the live views a new job changes (backend/api/view_cache.py)."""
        group = group_dispatch(self.request, self.queue)
        self.background.add_task(group.dispatch, list(job_ids), lane or kind.lane)
        self.response.headers["Location"] = location
        new = set(job_ids)
        parents = [
            job.parent_id
            for job in self.session.identity_map.values()  # the jobs just made: no query
            if isinstance(job, Job) and job.id in new and job.parent_id
        ]
        views = view_cache(self.request)
        if views is not None:  # and every list and queued job's view: positions moved
            views.invalidate(parents)

    def answered_before(self, location: str) -> None:
        """Answer 200 with the Location of what an earlier identical request made."""
        self.response.status_code = status.HTTP_200_OK
        self.response.headers["Location"] = location

    def cached_or_new(
        self,
        kind: JobKind,
        params: Any,
        cache_key: str,
        url: Callable[[str], str],
        webhook: store.Webhook | None = None,
        priority: int = 0,
    ) -> Job:
        """The job of `kind` an identical earlier request made (answered 200), else a new
        one, admitted, committed and queued on its lane (renders, edits; jobs/kinds.py).
        An earlier job answered from the cache sends no webhook: it has happened; one whose
        files expired is done again. 410 when a job it reads lost its files to retention,
        checked again after the commit (the race with a gc pass: jobs/gc.py)."""
        earlier = store.find_cached(
            self.session, owner=self.who, kind=kind.name, cache_key=cache_key
        )
        if earlier is not None and earlier.files_expired_at is None:
            self.answered_before(url(earlier.id))
            return earlier
        reads = gc.reads_of(None, params.to_dict())
        self._refuse_expired(reads)
        self.admit()
        with self.writing():
            job = store.create_job(
                self.session, params=params, kind=kind, owner=self.who, cache_key=cache_key,
                webhook=webhook, priority=priority, dispatched=True,
            )  # fmt: skip
            self.session.commit()
        try:
            self._refuse_expired(reads)
        except FilesExpired:
            store.request_cancel(self.session, job_id=job.id)
            self.session.commit()
            raise
        self.queued([job.id], kind, url(job.id), kind.job_lane(params))
        self.session.refresh(job)
        return job


async def _submission(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    queue: QueueDep,
    owner: CurrentOwner,
    response: Response,
    background: BackgroundTasks,
) -> Submission:
    """The dependency: a coroutine, so that FastAPI makes it on the event loop (a class
    as the dependency would be built in the thread pool: one more hop per submission)."""
    return Submission(request, session, settings, queue, owner, response, background)


SubmissionDep = Annotated[Submission, Depends(_submission)]
