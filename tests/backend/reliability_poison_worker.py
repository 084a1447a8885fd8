"""TEST HOOK, never used in production: `nada worker` whose engine kills the worker process
(os._exit, as a segfault or the kernel's OOM killer would) for a job whose target_text is
$NADA_TEST_POISON_TARGET. Run as `python -m tests.backend.reliability_poison_worker
--device cpu` by tests/backend/test_reliability_broker.py; other jobs run normally.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from typing import Any

from worker import runners

POISON = os.environ["NADA_TEST_POISON_TARGET"]
_adapt = runners.RUNNERS["adapt"]


def _engine() -> Callable[..., Any]:
    run = _adapt.engine()

    def run_or_die(params: Any, *args: Any, **kwargs: Any) -> Any:
        if params.target_text == POISON:
            os._exit(1)
        return run(params, *args, **kwargs)

    return run_or_die


runners.RUNNERS["adapt"] = dataclasses.replace(_adapt, engine=_engine)

if __name__ == "__main__":
    from cli.worker import main

    sys.exit(main())
