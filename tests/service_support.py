"""Shared helpers for the service tests: a models directory and a ready TestClient."""
import json
import shutil
import time
from pathlib import Path

from fastapi.testclient import TestClient

from model import DEFAULT_MODEL_DIR
from model.artifacts import MANIFEST

TOKEN = "test-admin-token-0123456789"


def make_models_dir(root: Path) -> Path:
    """models/v1 (the shipped model), models/v2 (same weights, version 2), models/broken."""
    models = root / "models"
    for name, version in (("v1", "1"), ("v2", "2")):
        shutil.copytree(DEFAULT_MODEL_DIR, models / name)
        manifest = json.loads((models / name / MANIFEST).read_text(encoding="utf-8"))
        manifest["version"] = version
        (models / name / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    shutil.copytree(models / "v1", models / "broken")
    weights = models / "broken" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10] + b"corrupted!")
    return models


def wait_ready(client: TestClient, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while client.get("/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError("service did not become ready")
        time.sleep(0.05)
