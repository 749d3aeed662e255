"""Property-based fuzzing of every operation from the app's own OpenAPI schema: no 5xx, and every
response conforms to its documented schema (the routes skip re-validating the result type)."""

import time

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from heichan.model import DEFAULT_MODEL_DIR
from heichan.service import Settings, create_app


def _app():
    # The shipped model, and its parent folder as the models directory (reload of "default" works).
    app = create_app(
        Settings(
            model_dir=str(DEFAULT_MODEL_DIR),
            models_dir=DEFAULT_MODEL_DIR.parent,
            admin_token="fuzz-admin-token-0123456789",
            max_batch=4,
        )
    )
    client = TestClient(app)
    client.__enter__()  # run the lifespan: load the model
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
