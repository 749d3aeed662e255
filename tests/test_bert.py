"""The BERT backend on a tiny random-init BERT built from the corpus (nothing is downloaded)."""

import threading
import time

import numpy as np
import pytest

from heichan.labels.taxonomy import TAXONOMY_PATH
from heichan.model import ModelLoadError, load_tagger
from heichan.model.bert import resolve_pretrained
from heichan.training.bert import fine_tune
from heichan.training.data import to_labelled_set
from heichan.training.train import main as train_main

LONG = (
    "某地警方通报，" + "民警在走访中了解到案件的来龙去脉，" * 12 + "最终查明嫌疑人架设猫池设备，为接码平台提供验证码。"
)


@pytest.fixture(scope="module")
def trained(tiny_bert_dir, splits, taxonomy, tmp_path_factory):
    # overfit 32 paragraphs: the standard check that gradients, masking and pooling are wired right
    train = to_labelled_set(splits["train"][:32], taxonomy.ids, taxonomy)
    dev = to_labelled_set(splits["dev"][:40], taxonomy.ids, taxonomy)
    tagger, losses = fine_tune(
        train,
        dev,
        taxonomy.ids,
        str(tiny_bert_dir),
        epochs=25,
        batch_size=8,
        patience=25,
        learning_rate=1e-2,
        max_length=64,
        stride=16,
        seed=0,
        progress=False,
    )
    out = tmp_path_factory.mktemp("bert-model")
    tagger.save(
        out,
        taxonomy_file=TAXONOMY_PATH,
        name="tiny",
        version="t",
        taxonomy_version=taxonomy.version,
    )
    return tagger, losses, out


def test_training_loss_goes_down(trained):
    _, losses, _ = trained
    assert len(losses) == 100
    assert np.mean(losses[-10:]) < 0.75 * np.mean(losses[:10])


def test_save_and_reload_give_identical_predictions(trained, splits):
    tagger, _, out = trained
    texts = [r["text"] for r in splits["test"][:12]] + [LONG]
    reloaded = load_tagger(out)
    assert np.allclose(tagger.predict_proba(texts), reloaded.predict_proba(texts), atol=1e-6)
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))


def test_long_paragraphs_use_overlapping_windows_not_truncation(trained):
    tagger, _, _ = trained
    encoding = tagger.encode([LONG])
    assert len(encoding["input_ids"]) > 1
    last = int(encoding["offset_mapping"][-1].max())
    assert last >= len(LONG) - 2  # the final sentence is seen
    assert tagger.predict_proba([LONG]).shape == (1, len(tagger.labels))


def test_evidence_offsets_point_into_the_text(trained):
    tagger, _, _ = trained
    (result,) = tagger.tag([LONG], thresholds=0.0)
    assert result.evidence
    for spans in result.evidence.values():
        assert all(0 <= s < e <= len(LONG) for s, e in spans)


def test_dynamic_int8_quantisation_loads_and_tags(trained, splits):
    _, _, out = trained
    texts = [r["text"] for r in splits["test"][:8]]
    full, quantized = load_tagger(out), load_tagger(out, quantize="int8")
    assert quantized.quantized
    assert np.abs(full.predict_proba(texts) - quantized.predict_proba(texts)).max() < 0.2
    assert quantized.tag(texts[:1], thresholds=0.0)[0].evidence == {label: [] for label in quantized.labels}


def test_train_command_with_the_bert_backend(tiny_bert_dir, tmp_path):
    out = tmp_path / "bert"
    metrics = train_main(
        [
            "--backend",
            "bert",
            "--base-model",
            str(tiny_bert_dir),
            "--out",
            str(out),
            "--max-train-samples",
            "64",
            "--max-steps",
            "8",
            "--batch-size",
            "8",
            "--max-length",
            "64",
            "--stride",
            "16",
            "--no-progress",
        ]
    )
    tagger = load_tagger(out)
    assert tagger.manifest["backend"] == "bert" and tagger.manifest["config"]["base_model"] == str(tiny_bert_dir)
    assert tagger.manifest["training_loss"]["steps"] == 8
    assert (out / "MODEL_CARD.md").is_file() and "test" in metrics


def test_missing_local_base_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not a model directory"):
        resolve_pretrained(str(tmp_path / "no-such-dir"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="has no config.json"):
        resolve_pretrained(str(tmp_path / "empty"))


def test_train_command_reports_a_missing_base_model_without_a_traceback(tmp_path, capsys):
    from heichan.cli import main

    assert (
        main(["train", "--backend", "bert", "--base-model", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 2
    )
    assert main(["train", "--data-dir", str(tmp_path / "no-data"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "is not a model directory" in err and "train.jsonl" in err and "Traceback" not in err


def test_uncached_hub_id_fails_fast_offline(tmp_path, monkeypatch):
    """Offline (as here and in CI) an uncached hub id must fail within seconds, never hang."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr("heichan.model.bert._hub_reachable", lambda timeout=3.0: False)
    outcome = {}

    def attempt():
        try:
            resolve_pretrained("hfl/chinese-roberta-wwm-ext")
        except ModelLoadError as exc:
            outcome["error"] = str(exc)

    start = time.monotonic()
    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "resolving an uncached hub id hung"
    assert "pass --base-model DIR" in outcome["error"] and "offline" in outcome["error"]
    assert time.monotonic() - start < 60


def test_hub_probe_is_bounded_in_time():
    from heichan.model.bert import _hub_reachable

    start = time.monotonic()
    _hub_reachable(timeout=1.0)
    assert time.monotonic() - start < 10
