#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then lint and run the tests.
#
#   ./scripts/test.sh                 # the whole suite (what CI runs)
#   ./scripts/test.sh -m "not slow"   # extra arguments go to pytest
#
# Creates .venv (Python 3.11+) with the project and its ml/dev/browser extras, installs
# Debian's chromium for the browser tests when it is missing (as root), and checks that the
# local PostgreSQL and Redis the service tests use are up (starting them where this machine
# knows how).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[ml,dev,browser]'

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "note: chromium is not installed; browser tests will be skipped (apt-get install chromium)" >&2
    fi
fi

scripts/services.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
