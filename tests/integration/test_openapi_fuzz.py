"""schemathesis over /openapi.json of the FHIR API, served over real HTTP: no request that
the document allows (and none a little outside it) makes the server answer 5xx.

SQLite only (the fuzzing is about request handling, not the database). Examples are
derandomized and bounded per operation, so a run is repeatable and takes about a minute.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error

from carevault.app import create_app
from carevault.runtime import Runtime
from tests.conftest import Clinic
from tests.live_server import live_server

EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 8, schemathesis.GenerationMode.NEGATIVE: 4}
SLOW_SCALE = 6
"""Under `-m slow`, six times the examples per operation (several minutes)."""


@pytest.fixture
def backend() -> str:
    return "sqlite"


def test_openapi_describes_the_fhir_api(runtime: Runtime) -> None:
    doc = create_app(runtime).openapi()
    read = doc["paths"]["/fhir/{rtype}/{rid}"]["get"]
    rtype = next(p for p in read["parameters"] if p["name"] == "rtype")
    assert "Observation" in rtype["schema"]["enum"]
    assert "Nonsense" not in rtype["schema"]["enum"]
    create = doc["paths"]["/fhir/{rtype}"]["post"]
    assert "application/fhir+json" in create["requestBody"]["content"]
    search = doc["paths"]["/fhir/{rtype}"]["get"]
    assert {"_count", "_page"} <= {p["name"] for p in search["parameters"]}
    assert "application/fhir+json" in read["responses"]["200"]["content"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def _selects_slow(config: pytest.Config) -> bool:
    expression = str(config.getoption("markexpr", "") or "")
    return "slow" in expression and "not slow" not in expression


@pytest.mark.parametrize(
    "scale",
    [pytest.param(1, id="short"), pytest.param(SLOW_SCALE, id="long", marks=pytest.mark.slow)],
)
def test_no_server_errors(
    runtime: Runtime, clinic: Clinic, scale: int, request: pytest.FixtureRequest
) -> None:
    if scale == SLOW_SCALE and not _selects_slow(request.config):
        pytest.skip("the long fuzzing run is for -m slow")
    session = requests.Session()
    session.trust_env = False  # localhost only, whatever proxy the environment names
    auth = clinic.north.headers()
    server_errors: list[str] = []
    statuses: Counter[tuple[str, int]] = Counter()
    with live_server(create_app(runtime)) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json", proxies={})
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) > 15
        for operation in operations:
            for mode, examples in EXAMPLES.items():
                _fuzz(
                    operation, mode, examples * scale, base, session, auth, server_errors, statuses
                )
    assert server_errors == [], "\n".join(server_errors)
    # the token worked and the fuzzing reached the handlers: answers, not only refusals
    assert sum(statuses.values()) > 100 * scale
    assert sum(n for (_, code), n in statuses.items() if code < 300) > 20, statuses
    # valid requests carry a valid token (negative ones may garble the header)
    assert statuses[("positive", 401)] == 0, statuses


def _fuzz(
    operation: Any,
    mode: schemathesis.GenerationMode,
    examples: int,
    base: str,
    session: requests.Session,
    auth: dict[str, str],
    server_errors: list[str],
    statuses: Counter[tuple[str, int]],
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base, session=session, headers=auth, timeout=120)
        statuses[(mode.value, response.status_code)] += 1
        if response.status_code >= 500:
            server_errors.append(
                f"{response.status_code} {operation.label}: {case.as_curl_command(base_url=base)}"
            )
        case.validate_response(response, checks=[not_a_server_error])

    try:
        run()
    except Unsatisfiable:
        pass  # nothing to make invalid (an operation without parameters, negative mode)
    except (Exception, BaseExceptionGroup) as exc:  # recorded above; fuzz the others too
        if not server_errors or operation.label not in server_errors[-1]:
            server_errors.append(f"{operation.label} ({mode.value}): {type(exc).__name__}: {exc}")
