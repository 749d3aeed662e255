"""The retrain-with-new-labels workflow of the README, end to end on a copy of the corpus."""

import re
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import yaml

from heichan.labels import load_taxonomy
from heichan.labels.corpus import build_corpus, load_split, parse_authoring_file
from heichan.labels.taxonomy import TAXONOMY_PATH
from heichan.model import load_tagger
from heichan.training.data import to_labelled_set
from heichan.training.evaluate import compute_metrics
from heichan.training.train import main as train_main

FIXTURE = Path(__file__).with_name("fixtures") / "new_label_v2.txt"
NEW = "ai_face_forgery"
FIXTURE_POSITIVES = {
    line.split(" | ", 1)[1] for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.startswith(NEW)
}


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    root = tmp_path_factory.mktemp("v2")
    raw = yaml.safe_load(TAXONOMY_PATH.read_text(encoding="utf-8"))
    raw["version"] = 2
    raw["labels"].append(
        {
            "id": NEW,
            "zh": "AI换脸 / 深度伪造",
            "en": "AI face forgery",
            "stage": "midstream",
            "since": 2,
            "definition": "Synthesising faces or face videos to pass identity checks or impersonate people.",
            "cues": ["换脸", "深度伪造", "合成人脸"],
        }
    )
    taxonomy_path = root / "taxonomy.yaml"
    taxonomy_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    taxonomy = load_taxonomy(taxonomy_path)
    data_dir = root / "data"
    shutil.copytree(TAXONOMY_PATH.with_name("data"), data_dir)
    shutil.copy(FIXTURE, data_dir / "authored" / FIXTURE.name)
    # the annotators re-judged two files for the new label, found it nowhere, and re-stamped them
    for name in ("03_platforms.txt", "07_negatives_advice.txt"):
        path = data_dir / "authored" / name
        path.write_text(
            path.read_text(encoding="utf-8").replace("# taxonomy_version: 1", "# taxonomy_version: 2", 1),
            encoding="utf-8",
        )
    build_corpus(taxonomy, data_dir)
    out = root / "model-v2"
    metrics = train_main(
        [
            "--data-dir",
            str(data_dir),
            "--taxonomy",
            str(taxonomy_path),
            "--out",
            str(out),
            "--no-progress",
            "--no-windows",
        ]  # whole-paragraph scores only: the same workflow, half the time
    )
    return {"taxonomy": taxonomy, "data_dir": data_dir, "model": out, "metrics": metrics}


def test_old_annotations_are_not_negatives_for_the_new_label(v2):
    taxonomy = v2["taxonomy"]
    train = [asdict(r) for r in load_split("train", v2["data_dir"])]
    data = to_labelled_set(train, taxonomy.ids, taxonomy)
    new = taxonomy.ids.index(NEW)
    old_rows = np.array([r["taxonomy_version"] == 1 for r in train])
    assert old_rows.sum() > 500 and (~old_rows).sum() >= 80
    assert not data.mask[old_rows, new].any()  # unjudged: left out of the new label's loss
    assert data.mask[old_rows][:, :new].all()  # every old label still learns from them
    assert data.mask[~old_rows].all()


def test_new_label_is_predicted_on_its_examples(v2):
    tagger = load_tagger(v2["model"], v2["taxonomy"])
    assert tagger.labels[-1] == NEW and tagger.taxonomy_version == 2
    examples = [r.text for r in parse_authoring_file(FIXTURE, v2["taxonomy"], "authored")]
    examples = [e for e in examples if e in FIXTURE_POSITIVES]
    assert len(examples) == 30
    hits = [NEW in labels for labels in tagger.predict(examples)]
    assert sum(hits) >= 24
    held_out = [asdict(r) for s in ("dev", "test") for r in load_split(s, v2["data_dir"]) if NEW in r.labels]
    assert held_out and sum(NEW in l for l in tagger.predict([r["text"] for r in held_out])) >= len(held_out) // 2


def test_old_labels_do_not_collapse(v2, splits, taxonomy):
    shipped = load_tagger("fast", taxonomy)  # the n-gram model, which this test retrains
    dev = to_labelled_set(splits["dev"], taxonomy.ids, taxonomy)
    before = compute_metrics(shipped.predict_proba(dev.texts), dev, shipped.thresholds, taxonomy.ids)["macro"]["f1"]
    new_tagger = load_tagger(v2["model"], v2["taxonomy"])
    P = new_tagger.predict_proba(dev.texts)[:, : len(taxonomy.ids)]
    after = compute_metrics(P, dev, new_tagger.thresholds[: len(taxonomy.ids)], taxonomy.ids)["macro"]["f1"]
    assert after >= before - 0.05, (before, after)


def test_a_model_of_the_older_taxonomy_still_loads_and_says_so(v2):
    old = load_tagger(None, v2["taxonomy"])
    assert old.taxonomy_version == 1 and len(old.labels) == 16 and NEW not in old.labels


def test_a_new_label_without_judged_negatives_is_refused(tmp_path):
    raw = yaml.safe_load(TAXONOMY_PATH.read_text(encoding="utf-8"))
    raw["version"] = 2
    raw["labels"].append({"id": NEW, "zh": "x", "en": "x", "stage": "midstream", "since": 2, "definition": "d"})
    taxonomy_path = tmp_path / "taxonomy.yaml"
    taxonomy_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    data_dir = tmp_path / "data"
    shutil.copytree(TAXONOMY_PATH.with_name("data"), data_dir)
    positives = [l for l in FIXTURE.read_text(encoding="utf-8").splitlines() if l.startswith(NEW)]
    (data_dir / "authored" / "new.txt").write_text(
        "# taxonomy_version: 2\n" + "\n".join(positives) + "\n", encoding="utf-8"
    )
    build_corpus(load_taxonomy(taxonomy_path), data_dir)
    with pytest.raises(ValueError, match=re.escape(f"cannot train label(s) ['{NEW}']")):
        train_main(["--data-dir", str(data_dir), "--taxonomy", str(taxonomy_path), "--out", str(tmp_path / "m")])
