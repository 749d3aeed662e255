import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from heichan.labels import load_taxonomy
from heichan.labels.corpus import DATA_DIR, load_split
from heichan.model import SHIPPED
from heichan.model.artifacts import MANIFEST


@pytest.fixture(scope="session")
def taxonomy():
    return load_taxonomy()


@pytest.fixture(scope="session")
def splits():
    return {s: [asdict(r) for r in load_split(s)] for s in ("train", "dev", "test")}


@pytest.fixture
def data_copy(tmp_path):
    """A writable copy of the shipped corpus directory."""
    dst = tmp_path / "data"
    shutil.copytree(DATA_DIR, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, splits, taxonomy):
    """A random-init tiny BERT saved like a hub checkpoint; vocabulary = the corpus's characters."""
    from transformers import BertConfig, BertModel, BertTokenizer

    from heichan.model.text import normalize

    chars = sorted({c for row in splits["train"] for c in normalize(row["text"]).lower() if not c.isspace()})
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars)}
    out = tmp_path_factory.mktemp("tiny-bert")
    BertTokenizer(vocab=vocab).save_pretrained(out)
    import torch

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(out, safe_serialization=True)
    return out


# Service helpers, shared through fixtures (tests never import each other).
TOKEN = "test-admin-token-0123456789"


def make_models_dir(root: Path) -> Path:
    """models/v1 (the shipped fast model), models/v2 (same weights, version 2), models/broken."""
    models = root / "models"
    for name, version in (("v1", "1"), ("v2", "2")):
        shutil.copytree(SHIPPED["fast"], models / name)  # service behaviour does not depend on the model
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


@pytest.fixture(scope="session")
def admin_token() -> str:
    return TOKEN


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return make_models_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def ready():
    """`ready(client)` waits until the app under test has loaded its model."""
    return wait_ready


# Batch helpers (JSONL archives with bad lines), shared through the `batch_io` fixture.
BAD_LINES = [
    b'{"id": "bad-empty", "text": "   "}',
    b'{"id": "bad-json", "text": ',
    b'["not", "an", "object"]',
    b'{"text": "no id here"}',
    b'{"id": "bad-utf8", "text": "\xff\xfe"}',
    b'{"id": "bad-type", "text": 7}',
]


def articles(n: int, seed: int = 0) -> list[dict]:
    """n articles of 1–4 corpus texts each, ids doc-00000, doc-00001, …"""
    import random

    texts = [r.text for s in ("train", "dev", "test") for r in load_split(s)]
    rng = random.Random(seed)
    return [{"id": f"doc-{i:05d}", "text": "\n\n".join(rng.sample(texts, rng.randint(1, 4)))} for i in range(n)]


def write_jsonl(path: Path, rows: list[dict], bad_every: int = 0) -> list[str]:
    """Write rows with bad lines sprinkled in; return the ids of the good rows in order."""
    with open(path, "wb") as fh:
        for i, row in enumerate(rows):
            fh.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")
            if bad_every and i % bad_every == 0:
                fh.write(BAD_LINES[(i // bad_every) % len(BAD_LINES)] + b"\n\n")
    return [r["id"] for r in rows]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def batch_io():
    """`batch_io.articles(n, seed)`, `batch_io.write_jsonl(path, rows, bad_every)`,
    `batch_io.read_jsonl(path)` and `batch_io.BAD_LINES`."""
    from types import SimpleNamespace

    return SimpleNamespace(articles=articles, write_jsonl=write_jsonl, read_jsonl=read_jsonl, BAD_LINES=BAD_LINES)
