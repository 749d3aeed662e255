"""Property-based fuzzing of every operation from the app's own OpenAPI schema: no 5xx."""
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from service import Settings, create_app
from service_support import TOKEN, make_models_dir, wait_ready

_models = None


def _app():
    global _models
    import tempfile
    from pathlib import Path
    _models = make_models_dir(Path(tempfile.mkdtemp(prefix="heichan-fuzz-")))
    app = create_app(Settings(model_dir=str(_models / "v1"), models_dir=_models, admin_token=TOKEN, max_batch=4))
    client = TestClient(app)
    client.__enter__()  # run the lifespan: load the model
    wait_ready(client)
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error])
