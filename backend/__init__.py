"""The web service's HTTP side: the FastAPI app, its routes and their request bodies.

`main.py` wires the app; `api/routes/*.py` the routes, `api/` what they share (job views,
file serving, submissions, upload refusals); `schemas/` the request and response bodies;
`sse.py` the event stream; `uploads.py` the multipart receiver and
`generator_validation.py` the limited child that checks an uploaded generator. Jobs'
rows, queue and files are `jobs/`'s: the API only asks it. Nothing here imports torch,
open_clip or `worker` (tests/backend/test_imports.py, tests/test_architecture.py).
"""
