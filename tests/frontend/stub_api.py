"""A stand-in for the service inside the browser, through Playwright's request routing.

Only for what the real service cannot show on demand (a page served under a sub-path,
hostile prompt text, a job frozen mid-training); the Done-means tests drive the real
service. It serves frontend/ and answers the API in the documented shapes; GET
/api/v1/params is nada.params.schema() itself, as the real route serves it.
"""

from __future__ import annotations

import io
import json
import mimetypes
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from nada import params as P

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def sample_png(step: int, size: int = 64, n: int = 4) -> bytes:
    """A source row over an adapted row of smooth colour fields (as the engine writes them)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size * n, size * 2))
    draw = ImageDraw.Draw(img)
    for i in range(n):
        for row in range(2):
            for y in range(size):
                t = y / size
                shift = (step * 7 + i * 40) % 255 if row else i * 40
                colour = (
                    int(80 + 120 * t + shift) % 256,
                    int(60 + i * 35 + row * 60) % 256,
                    int(200 - 90 * t),
                )
                draw.line(
                    [(i * size, row * size + y), ((i + 1) * size - 1, row * size + y)], fill=colour
                )
            cx, cy = i * size + size // 2, row * size + size // 2
            r = size // 4 + (step % 5 if row else 0)
            draw.ellipse(
                [cx - r, cy - r, cx + r, cy + r], fill=(240, 220 - row * 80, 200 - row * 120)
            )
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def make_job(
    job_id: str,
    source: str,
    target: str,
    *,
    status: str = "running",
    step: int = 0,
    total: int = 300,
    sample_every: int = 50,
    minutes_ago: float = 1.0,
    **extra,
) -> dict:
    now = datetime.now(UTC)
    created = now - timedelta(minutes=minutes_ago)
    samples = [s for s in range(sample_every, step + 1, sample_every)]
    if status == "succeeded" and total not in samples:
        samples.append(total)
    job = {
        "id": job_id,
        "status": status,
        "stage": "training" if status == "running" else None,
        "step": step,
        "total_steps": total,
        "queue_position": None,
        "eta_seconds": None,
        "params": {
            "source_text": source,
            "target_text": target,
            "generator": "ffhq-1024",
            "clip_models": [
                {"name": "ViT-B-32", "weight": 1.0},
                {"name": "ViT-B-16", "weight": 1.0},
            ],
            "steps": total,
            "layers": 10,
            "selection": "latent",
            "include_torgb": False,
            "batch_size": 2,
            "lr": 0.002,
            "sample_every": sample_every,
            "checkpoint_every": 0,
            "mixing": 0.0,
            "seed": 0,
        },
        "selected_layers": [],
        "losses": {},
        "samples": [{"step": s, "url": f"/api/v1/jobs/{job_id}/samples/{s}.png"} for s in samples],
        "checkpoint_url": f"/api/v1/jobs/{job_id}/checkpoint" if status == "succeeded" else None,
        "error": None,
        "created_at": created.isoformat(),
        "started_at": (created + timedelta(seconds=5)).isoformat() if status != "queued" else None,
        "finished_at": now.isoformat() if status in ("succeeded", "failed", "canceled") else None,
    }
    job.update(extra)
    return job


def _combinations(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, the last key fastest (as jobs/sweeps.py)."""
    combos: list[dict] = [{}]
    for name, values in grid.items():
        combos = [{**c, name: v} for c in combos for v in values]
    return combos


class StubApi:
    """Route handler for `page.route(f"{origin}/**", stub.handle)`; `prefix` is the sub-path."""

    def __init__(self, jobs: list[dict], prefix: str = "/"):
        self.jobs = {j["id"]: j for j in jobs}
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.requests: list[str] = []
        self.created: list[dict] = []
        self.sweeps_created: list[dict] = []  # POST /sweeps bodies
        self.sweeps: dict[str, dict] = {}

    def _json(self, route, body, status: int = 200) -> None:
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    def handle(self, route) -> None:
        req = route.request
        path = urlsplit(req.url).path
        self.requests.append(f"{req.method} {path}")
        if not path.startswith(self.prefix):
            return route.fulfill(status=404, body="outside the app's prefix")
        rel = path[len(self.prefix) :]
        if not rel.startswith("api/v1/"):
            file = (FRONTEND / (rel or "index.html")).resolve()
            if FRONTEND in file.parents and file.is_file():
                ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                if file.suffix == ".js":
                    ctype = "text/javascript"
                return route.fulfill(status=200, content_type=ctype, body=file.read_bytes())
            return route.fulfill(status=404, body="not found")
        api = rel[len("api/v1/") :]
        parts = api.split("/")
        if api == "healthz":
            return self._json(
                route, {"status": "ok", "database": "ok", "broker": "ok", "version": "stub"}
            )
        if api == "session":  # a service without API tokens: no sign-in
            return self._json(route, {"tokens": False, "owner": None})
        if api == "params":
            return self._json(route, P.schema())
        if api == "generators":
            return self._json(
                route,
                {
                    "data": [
                        {
                            "name": "ffhq-1024",
                            "size": 1024,
                            "description": "Faces (FFHQ), NVIDIA's StyleGAN2-ADA",
                            "url": None,
                            "sha256": None,
                        },
                        {
                            "name": "afhqdog-512",
                            "size": 512,
                            "description": "Dogs (AFHQ)",
                            "url": None,
                            "sha256": None,
                        },
                    ],
                    "count": 2,
                    "random_sizes": [64, 256],
                },
            )
        if api == "clip-models":
            return self._json(
                route,
                {
                    "data": [
                        {
                            "name": "ViT-B-32:openai",
                            "architecture": "ViT-B-32",
                            "pretrained": "openai",
                            "default": True,
                        },
                        {
                            "name": "ViT-B-16:openai",
                            "architecture": "ViT-B-16",
                            "pretrained": "openai",
                            "default": True,
                        },
                    ],
                    "count": 2,
                },
            )
        if api == "jobs" and req.method == "GET":
            jobs = sorted(self.jobs.values(), key=lambda j: j["created_at"], reverse=True)
            return self._json(route, {"data": jobs, "count": len(jobs)})
        if api == "jobs" and req.method == "POST":
            body = json.loads(req.post_data or "{}")
            self.created.append(body)
            if body.get("steps") == 4999:  # a hook for tests: a server-side refusal
                return self._json(
                    route,
                    {
                        "detail": [
                            {
                                "loc": ["body", "steps"],
                                "msg": "Value error, steps must be 1..4998 here",
                                "type": "value_error",
                            }
                        ]
                    },
                    422,
                )
            job = make_job(
                f"job{len(self.jobs) + 1}",
                body["source_text"],
                body["target_text"],
                status="queued",
                minutes_ago=0,
            )
            self.jobs[job["id"]] = job
            return self._json(route, job, 202)
        if api == "sweeps" and req.method == "POST":
            body = json.loads(req.post_data or "{}")
            self.sweeps_created.append(body)
            grid = body.get("grid") or {}
            if 4999 in grid.get("steps", []):  # a hook for tests: the service refuses a grid entry
                return self._json(
                    route,
                    {
                        "detail": [
                            {
                                "loc": ["body", "grid", "steps"],
                                "msg": "Value error, steps must be 1..4998 here",
                                "type": "invalid_param",
                            }
                        ]
                    },
                    422,
                )
            sweep_id = f"sweep{len(self.sweeps_created)}"
            members = []
            for i, combo in enumerate(_combinations(grid)):
                params = {**body.get("base", {}), **combo}
                member = make_job(
                    f"{sweep_id}-job{i + 1}",
                    params.get("source_text", ""),
                    params.get("target_text", ""),
                    status="queued",
                    minutes_ago=0,
                    sweep_id=sweep_id,
                )
                member["params"].update(params)
                self.jobs[member["id"]] = member
                members.append(member)
            self.sweeps[sweep_id] = {
                "id": sweep_id,
                "count": len(members),
                "base": body.get("base", {}),
                "grid": grid,
                "varying": [k for k, v in grid.items() if len(v) > 1],
                "status": {"queued": len(members)},
                "done": False,
                "jobs": members,
                "created_at": datetime.now(UTC).isoformat(),
            }
            return self._json(route, self.sweeps[sweep_id], 202)
        if api == "sweeps" and req.method == "GET":
            sweeps = list(reversed(self.sweeps.values()))
            return self._json(route, {"data": sweeps, "count": len(sweeps)})
        if parts[0] == "sweeps" and len(parts) == 2 and parts[1] in self.sweeps:
            return self._json(route, self.sweeps[parts[1]])
        if parts[0] == "jobs" and len(parts) >= 2:
            job = self.jobs.get(parts[1])
            if job is None:
                return self._json(route, {"detail": "job not found"}, 404)
            if len(parts) == 2 and req.method == "GET":
                return self._json(route, job)
            if len(parts) == 3 and parts[2] == "events":
                return route.fulfill(
                    status=404, body="no streams here"
                )  # the page falls back to polling
            if len(parts) == 4 and parts[2] == "samples":
                return route.fulfill(
                    status=200,
                    content_type="image/png",
                    body=sample_png(int(parts[3].split(".")[0])),
                )
            if len(parts) == 3 and parts[2] == "cancel":
                job.update(status="canceled", finished_at=datetime.now(UTC).isoformat())
                return self._json(route, job)
        return self._json(route, {"detail": "not found"}, 404)
