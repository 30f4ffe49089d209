"""Schemathesis against /openapi.json: generated requests never get a 5xx or an off-schema response."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("server", ["plain", "grounded"])
def test_every_generated_request_gets_a_well_formed_answer(server: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("live_server")[0] if server == "plain" else request.getfixturevalue("grounded")
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "GET /health", "POST /chat/", "GET /metrics", "POST /v1/chat/completions", "GET /v1/models",
        "POST /search", "GET /search/filters", "POST /v1/embeddings", "GET /conversations", "GET /conversations/{id}",
        "DELETE /conversations/{id}", "GET /auth/config"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        call()
