"""The job system shared by the API (`backend/`) and the GPU workers (`worker/`).

Jobs and their events in a database (`db/`, with Alembic migrations), what the API does
with them (`store`), what workers do (`leases`: claims, fenced writes, the reaper), the
Celery queue (`queue`), kinds of work (`kinds`), where a job's files are (`storage`), and
the settings every process reads. Torch-free, and it imports neither `worker` nor
`backend` (tests/test_architecture.py); docs/architecture.md draws the whole picture.
"""
