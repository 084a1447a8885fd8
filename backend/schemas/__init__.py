"""The API's request and response bodies (pydantic), one module per family of routes.

`jobs` (every kind's `JobPublic`, `JobCreate`, GET /params), `photos` (inversions, edits),
`renders`, `images` (example images), `catalog` (generators, CLIP models), `health`.
`API_PREFIX` lives here because every URL those bodies carry starts with it.
"""

API_PREFIX = "/api/v1"
