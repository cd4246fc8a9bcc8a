"""Schemathesis against `/openapi.json`: whatever it sends to any route, the answer is never a 5xx.

The app runs in-process (Litestar over ASGI) on the real redis-server and SeaweedFS, with auth on;
schemathesis generates valid and invalid bodies, query strings, path parameters and headers for
every documented operation, a bounded number of examples each (the whole run takes well under a
minute). The synchronous `run` route is left out: it waits for a worker (there is none on this
queue) and shares its body validation with `submit`, which is fuzzed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from relkit import ALL_KEYS
from schemathesis import GenerationMode

from api.app import create_app
from worker.shared.settings import Settings

pytestmark = pytest.mark.timeout(180)

MAX_EXAMPLES = 50
AUTH = {"Authorization": f"Key {ALL_KEYS[0]}"}


@pytest.fixture(scope="module")
def api_schema(backends: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    env = {
        **backends,
        "RQ_QUEUE": "rel-fuzz",
        "S3_PREFIX": "rel-fuzz/",
        "API_KEYS": ",".join(ALL_KEYS),
        "PUBLIC_BASE_URL": "http://testserver",
        "MAX_INPUT_BYTES": "100000",
        "SYNC_TIMEOUT_S": "1",
    }
    app = create_app(Settings.from_env(env))
    return schemathesis.openapi.from_asgi("/openapi.json", app).exclude(operation_id="run")


def test_no_input_yields_a_server_error(api_schema: Any, observe) -> None:
    """Valid and invalid cases for every operation; any 5xx is collected, with what caused it.

    Hypothesis is driven directly (schemathesis' pytest integration does not support pytest 9's
    nodes), MAX_EXAMPLES per operation and generation mode, derandomized so runs are repeatable.
    """
    seen: Counter[int] = Counter()
    server_errors: list[str] = []
    skipped: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                      derandomize=True, database=None)
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: Any) -> None:
                response = case.call(headers=case.headers or AUTH)
                seen[response.status_code] += 1
                if response.status_code >= 500:
                    server_errors.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

            try:
                call()
            except Unsatisfiable:
                skipped.append(f"{operation.label} ({mode.value})")  # e.g. no parameter that can be made invalid
    observe(attack="schemathesis on /openapi.json (all operations but run, valid and invalid inputs)",
            requests_tried=sum(seen.values()), status_counts=dict(sorted(seen.items())), server_errors=len(server_errors))
    assert server_errors == []
    assert sum(seen.values()) >= 200
