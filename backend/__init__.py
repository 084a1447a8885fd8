"""The web service: REST API, job persistence and the job queue's producer side.

`backend` knows jobs, not tensors: nothing here imports torch, open_clip or `worker`
(tests/backend/test_imports.py holds that line). Workers import `jobs.leases` to record
what they do; the API enqueues work by task name (`jobs.queue`).
"""
