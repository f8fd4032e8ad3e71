"""Property-based fuzzing of every OpenAI route with schemathesis, against the live server's own
`/openapi.json` (FastAPI serves it; the Anthropic and Gemini sub-apps have none, see
test_dialect_fuzz.py). Deterministic (derandomized) and bounded: about a minute on 2 cores.

What is checked, and what is relaxed because the schema cannot say it:
- never a 5xx (`not_a_server_error`), in positive and negative (schema-violating) cases;
- the status is one the operation declares, and a body matches its response model (under
  `/openai/v1`; the bare root `/v1` also answers in the other dialects' JSON, see `checks_for`);
- relaxed: the Content-Type of downloads (the file's own type; the schema has one fixed type),
  and the acceptance checks (`positive_data_acceptance` and `negative_data_rejection`): the
  multipart and JSON bodies are read off the raw stream, so the schema declares no request body
  and schemathesis cannot build a valid one, nor know that unknown fields are ignored (spec §1).
"""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import loopback
from tests.fuzz.conftest import STATS, Timer
from tests.servers import FileDockServer

EXAMPLES_PER_OPERATION = 100  # per operation and mode; operations without parameters need fewer
PREFIXES = ("/v1", "/openai/v1")
OPERATIONS = [
    ("POST", "/files"),
    ("GET", "/files"),
    ("GET", "/files/{file_id}"),
    ("DELETE", "/files/{file_id}"),
    ("HEAD", "/files/{file_id}/content"),
    ("GET", "/files/{file_id}/content"),
    ("GET", "/uploads"),
    ("POST", "/uploads"),
    ("POST", "/uploads/{upload_id}/parts"),
    ("POST", "/uploads/{upload_id}/complete"),
    ("POST", "/uploads/{upload_id}/cancel"),
    ("POST", "/webhook_endpoints"),
    ("GET", "/webhook_endpoints"),
    ("GET", "/webhook_endpoints/{endpoint_id}"),
    ("POST", "/webhook_endpoints/{endpoint_id}"),
    ("DELETE", "/webhook_endpoints/{endpoint_id}"),
    ("POST", "/webhook_endpoints/{endpoint_id}/rotate_secret"),
    ("POST", "/webhook_endpoints/{endpoint_id}/test"),
    ("GET", "/webhook_endpoints/{endpoint_id}/deliveries"),
    ("GET", "/webhook_event_types"),
    ("POST", "/batches"),
    ("GET", "/batches"),
    ("GET", "/batches/{batch_id}"),
    ("POST", "/batches/{batch_id}/cancel"),
]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # the same cases on every run: stable in CI
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def schema(fuzz_server: FileDockServer) -> Any:
    served = loopback.get(f"{fuzz_server.url}/openapi.json")
    assert served.status_code == 200
    return schemathesis.openapi.from_dict(served.json())


def test_the_schema_lists_exactly_the_fuzzed_operations(schema: Any) -> None:
    listed = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert listed == {(method, prefix + path) for prefix in PREFIXES for method, path in OPERATIONS}


def checks_for(prefix: str, path: str, mode: GenerationMode) -> list[Any]:
    # The bare root `/v1` is shared with the Anthropic and Gemini faces: by the sniffing rule
    # (spec §4.2) an id such as `v1beta` or `file_x` makes it another dialect's request, answered
    # in that dialect's error JSON, which this schema cannot describe. `/openai/v1` is never sniffed.
    if mode is GenerationMode.NEGATIVE or prefix == "/v1":
        return [not_a_server_error, status_code_conformance]
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    if not path.endswith("/content"):
        checks.append(content_type_conformance)
    return checks


# Negative cases need a parameter the schema constrains: only the list's `limit`, `order` and
# the like are; a path id may be any string, and the bodies are not in the schema.
CASES = [
    *(pytest.param(m, p, GenerationMode.POSITIVE, id=f"{m} {p} positive") for m, p in OPERATIONS),
    pytest.param("GET", "/files", GenerationMode.NEGATIVE, id="GET /files negative"),
]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_fuzz_openai_operation(
    schema: Any,
    fuzz_server: FileDockServer,
    seeded_ids: dict[str, str],
    method: str,
    path: str,
    prefix: str,
    mode: GenerationMode,
) -> None:
    operation = schema[prefix + path][method]
    # Half the cases name the seeded file or Upload, so 2xx answers are checked too.
    known = {name: value for name, value in seeded_ids.items() if "{" + name + "}" in path}
    strategy = operation.as_strategy(generation_mode=mode)
    if known:
        strategy = st.one_of(strategy, operation.as_strategy(generation_mode=mode, path_parameters=known))
    checks = checks_for(prefix, path, mode)
    count = 0

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: Any) -> None:
        nonlocal count
        count += 1
        response = case.call(base_url=fuzz_server.url, timeout=10)
        case.validate_response(response, checks=checks)

    with Timer() as timer:
        run()
    STATS.add("schemathesis", count, timer.seconds)
    assert count > 0
