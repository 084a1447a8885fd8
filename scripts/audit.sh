#!/usr/bin/env bash
# Audit the installed environment (.venv) for known vulnerabilities with pip-audit.
#
# Nothing is ignored: no --ignore-vuln, and --strict makes a package that could not be
# audited (vulnerability service unreachable, package unknown to it) fail the run instead
# of being skipped with a "No known vulnerabilities found" that covered nothing.
# Needs the PyPI JSON API (default) or OSV (`AUDIT_SERVICE=osv`); offline, it fails.
# Extra arguments go to pip-audit (e.g. --format json).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/pip-audit \
    --strict \
    --skip-editable \
    --progress-spinner off \
    --vulnerability-service "${AUDIT_SERVICE:-pypi}" \
    "$@"
