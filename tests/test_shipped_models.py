import json
import re
import shutil

import numpy as np
import pytest

from heichan.cli import main
from heichan.model import SHIPPED, ModelLoadError, load_tagger, tag_article
from heichan.model.artifacts import MANIFEST

CASE = "杭州警方打掉一个藏在写字楼里的“卡池”窝点，嫌疑人把上百张手机卡插入卡池，将收到的验证码上传到接码平台出售。"
ADVICE = "反诈民警提醒：验证码是保护账户安全的最后一道防线，任何人索要验证码都不要告诉对方。"


@pytest.fixture(scope="module")
def tagger():
    return load_tagger()


def test_shipped_model_tags_a_case_and_leaves_anti_fraud_advice_alone(tagger):
    case, advice = tagger.tag([CASE, ADVICE])
    assert {"modem_pool", "sms_code_platform"} <= set(case.labels)
    assert advice.labels == []
    assert set(case.scores) == set(tagger.labels) and all(0 <= p <= 1 for p in case.scores.values())


def test_traditional_text_tags_like_simplified(tagger):
    simplified, traditional = tagger.tag(
        [
            CASE,
            "杭州警方打掉一個藏在寫字樓裡的“卡池”窩點，嫌疑人把上百張手機卡插入卡池，將收到的驗證碼上傳到接碼平臺出售。",
        ]
    )
    assert simplified.labels == traditional.labels
    assert simplified.scores == pytest.approx(traditional.scores, abs=0.02)


def test_evidence_spans_point_into_the_paragraph(tagger):
    (result,) = tagger.tag([CASE])
    assert set(result.evidence) == set(result.labels)
    for spans in result.evidence.values():
        assert 1 <= len(spans) <= 3
        for start, end in spans:
            assert 0 <= start < end <= len(CASE)
    assert any("接码" in CASE[s:e] for s, e in result.evidence["sms_code_platform"])


def test_predict_mirrors_its_input(tagger):
    assert isinstance(tagger.predict(CASE), list) and isinstance(tagger.predict(CASE)[0], str)
    assert tagger.predict([CASE, ADVICE])[1] == []


def test_threshold_overrides(tagger):
    assert tagger.tag([ADVICE], thresholds=0.0)[0].labels == tagger.labels
    with pytest.raises(KeyError, match=re.escape("unknown label(s) ['modem-pool']")):
        tagger.tag([CASE], thresholds={"modem-pool": 0.1})


def test_article_labels_are_the_union_of_paragraph_labels(tagger):
    text = f"{ADVICE}\n\n{CASE}\n"
    article = tag_article(tagger, text)
    assert [p.labels == [] for p in article.paragraphs] == [True, False]
    assert article.labels == article.paragraphs[1].labels
    assert article.scores["modem_pool"] == article.paragraphs[1].scores["modem_pool"]
    for p in article.paragraphs:
        assert text[p.start : p.end] == p.text
        for spans in p.evidence.values():
            assert all(p.start <= s < e <= p.end for s, e in spans)


# On this challenge set the first shipped model (the n-gram model of corpus v1) scored macro-F1
# 0.586 with macro recall 0.441: that is the bar the default model is measured against.
V1_CHALLENGE_MACRO_F1 = 0.586


def test_shipped_default_meets_the_quality_bar_on_the_challenge_set(taxonomy):
    from heichan.labels.corpus import DATA_DIR, read_jsonl
    from heichan.training.compare import score_paragraphs

    scores = score_paragraphs(load_tagger(), read_jsonl(DATA_DIR / "challenge.jsonl"), taxonomy)
    assert scores["macro_f1"] >= V1_CHALLENGE_MACRO_F1 + 0.15
    assert scores["recall"] >= 0.80 and scores["fpr"] <= 0.10
    assert abs(scores["trad_f1"] - scores["macro_f1"]) <= 0.05
    assert abs(scores["noisy_f1"] - scores["macro_f1"]) <= 0.05


def test_eval_compares_models_on_challenge_dev_and_test(capsys):
    assert main(["eval", "fast", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) == {"challenge", "dev", "test", "challenge articles"}
    for models in table.values():
        assert set(models) == {"heichan-fast", "keyword baseline"}
        assert models["heichan-fast"]["macro_f1"] > models["keyword baseline"]["macro_f1"]


@pytest.fixture
def model_copy(tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(SHIPPED["fast"], dst)
    return dst


def test_missing_model_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_tagger(tmp_path / "nope")


def test_directory_without_manifest(tmp_path):
    with pytest.raises(ModelLoadError, match="has no manifest.json"):
        load_tagger(tmp_path)


def test_corrupted_weights_fail_the_checksum(model_copy):
    weights = model_copy / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="checksum mismatch for 'weights.safetensors'"):
        load_tagger(model_copy)


def test_missing_model_file(model_copy):
    (model_copy / "vocabulary.json").unlink()
    with pytest.raises(ModelLoadError, match="'vocabulary.json' listed in the manifest is missing"):
        load_tagger(model_copy)


def test_manifest_with_labels_unknown_to_the_taxonomy(model_copy):
    manifest = json.loads((model_copy / MANIFEST).read_text(encoding="utf-8"))
    manifest["labels"][0] = "sim_rental"
    (model_copy / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelLoadError, match=re.escape("model labels ['sim_rental'] are not in the model's taxonomy")):
        load_tagger(model_copy)


def test_tag_command_reads_files_and_stdin(tmp_path, capsys, monkeypatch):
    article = tmp_path / "article.txt"
    article.write_text(f"{ADVICE}\n\n{CASE}\n", encoding="utf-8")
    assert main(["tag", str(article), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["taxonomy_version"] == 1 and len(out["paragraphs"]) == 2
    assert "modem_pool" in out["labels"]
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(CASE.encode("utf-8"))))
    assert main(["tag", "-"]) == 0
    assert "modem_pool" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        ("猫池窝点".encode("gb18030"), "is not valid UTF-8"),
    ],
)
def test_tag_command_rejects_bad_input_clearly(tmp_path, capsys, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    assert main(["tag", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_tag_command_with_a_broken_model_dir(tmp_path, capsys):
    path = tmp_path / "a.txt"
    path.write_text(CASE, encoding="utf-8")
    assert main(["tag", str(path), "--model", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_eval_accepts_outside_jsonl_and_writes_predictions_and_report(tmp_path, capsys):
    data = tmp_path / "outside.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [
                {"id": "x1", "text": CASE, "labels": ["modem_pool", "sms_code_platform"]},
                {"id": "x2", "text": ADVICE, "labels": []},
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    preds, report = tmp_path / "preds.jsonl", tmp_path / "report"
    assert main(["eval", "--data", str(data), "--predictions", str(preds), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "macro" in out and "keyword baseline" in out
    lines = [json.loads(l) for l in preds.read_text(encoding="utf-8").splitlines()]
    assert [l["id"] for l in lines] == ["x1", "x2"] and len(lines[0]["scores"]) == 16
    page = (report / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 17 and "Worst false positives" in page


def test_eval_rejects_unknown_labels_in_outside_data(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"id": "1", "text": CASE, "labels": ["modem-pool"]}) + "\n", encoding="utf-8")
    assert main(["eval", "--data", str(data)]) == 2
    assert "unknown label 'modem-pool'" in capsys.readouterr().err


def test_retraining_the_fast_model_reproduces_it(tmp_path):
    from heichan.training.train import main as train_main

    metrics = train_main(["--out", str(tmp_path / "m"), "--no-progress"])
    retrained, shipped = load_tagger(tmp_path / "m"), load_tagger("fast")
    assert np.allclose(retrained.thresholds, shipped.thresholds)
    assert np.allclose(retrained.predict_proba([CASE, ADVICE]), shipped.predict_proba([CASE, ADVICE]), atol=1e-5)
    assert metrics["test"]["model"]["macro"]["f1"] >= 0.85


def test_fast_model_scores_the_best_window_of_a_long_paragraph():
    from heichan.model.windows import sentence_windows

    fast = load_tagger("fast")
    assert fast.windows
    filler = (
        "今年以来，全市公安机关持续深化打击整治行动，会同有关部门开展宣传进社区、进校园活动，群众安全感稳步提升。" * 3
    )
    text = filler + CASE + filler
    [result] = fast.tag([text])
    assert "modem_pool" in result.labels
    assert (
        fast.predict_proba([text])[0, fast.labels.index("modem_pool")]
        > fast.whole_proba([text])[0, fast.labels.index("modem_pool")]
    )
    windows = sentence_windows(text)
    for s, e in result.evidence["modem_pool"]:  # evidence lies inside one window that holds the case
        assert any(ws <= s and e <= we and CASE[:10] in text[ws:we] for ws, we in windows)
