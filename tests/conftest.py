import shutil
from dataclasses import asdict

import pytest

from labels import load_taxonomy
from labels.corpus import DATA_DIR, load_split


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

    from model.text import normalize

    chars = sorted({c for row in splits["train"] for c in normalize(row["text"]).lower() if not c.isspace()})
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars)}
    out = tmp_path_factory.mktemp("tiny-bert")
    BertTokenizer(vocab=vocab).save_pretrained(out)
    import torch
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=128)
    BertModel(config).save_pretrained(out, safe_serialization=True)
    return out
