"""Property-based API tests from our own OpenAPI document (schemathesis), as admin and analyst:
no 5xx, and every response matches the schema it is documented with. Bounded: a few examples
per operation, derandomised, so the run takes well under a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from tests.conftest import as_role

EXAMPLES_PER_OPERATION = 12
# Operations that change the city for every later test (a published version cannot be
# unpublished) are fuzzed for input validation only: their bodies never pass validation here.
SKIP = {("POST", "/imports/{kind}")}  # multipart uploads: covered by the import tests


@pytest.mark.parametrize("role", ["admin", "analyst"])
def test_api_conforms_to_its_openapi_under_fuzzing(
    live_server: str, role_keys: dict[str, str], role: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    headers = as_role(role_keys, role)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        operations += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=live_server, headers=headers)
            # the limits are out of the way here (tests/conftest.py settings): a 429 would
            # mean an operation was not exercised
            assert response.status_code != 429, f"{case.method} {case.formatted_path} -> 429"
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]}"
            )
            # Schema-valid is not always domain-valid (a category must exist, a point must
            # lie in the city), so "valid data is accepted" is the one check left out.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect all operations' failures
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:1500])
    assert operations >= 15
    assert not failures, "\n\n".join(failures)
