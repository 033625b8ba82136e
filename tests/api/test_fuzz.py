"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis): no input, valid or
not, makes it answer 5xx, and every answer matches what the document promises."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.app import build_service, create_app
from services.api.local import serve_in_thread
from tests.api.conftest import Served


@pytest.fixture(scope="module")
def api_url(served: Served) -> Iterator[str]:
    configured = served.settings(open_writes=True)  # the write path too, not only its 403
    with serve_in_thread(create_app(configured, service=build_service(configured))) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(api_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api_url}/openapi.json")


# Driven with hypothesis directly: schemathesis' pytest plugin does not run under this pytest.
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/rank"), ("POST", "/interactions"), ("GET", "/healthz"), ("GET", "/readyz")]
)
def test_no_input_makes_the_api_fail(api_schema: schemathesis.BaseSchema, method: str, path: str) -> None:
    operation = api_schema[path][method]
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

    @given(case=operation.as_strategy())
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=checks)

    call()
