import json
import re
from collections import Counter
from pathlib import Path

import pytest

from heichan.cli import main
from heichan.labels.check import check_files, shared_ngrams
from heichan.labels.corpus import DATA_DIR, SPLITS, CorpusError, build_corpus, parse_authoring_file, read_jsonl
from heichan.labels.profile import noise_kinds, profile
from heichan.model.text import is_traditional


def split_paths(data_dir):
    return [data_dir / f"{s}.jsonl" for s in SPLITS]


def rows(splits):
    return [r for s in SPLITS for r in splits[s]]


def test_shipped_corpus_passes_the_check(taxonomy, capsys):
    assert main(["data", "check"]) == 0
    out = capsys.readouterr().out
    assert "data check: OK" in out and "template score" in out


def test_shipped_corpus_meets_the_data_requirements(splits, taxonomy):
    all_rows = rows(splits)
    authored = [r for r in all_rows if r["source"] == "authored"]
    seeds = {r["source"] for r in all_rows if r["source"] != "authored"}
    assert len(all_rows) >= 3600 and len(authored) >= 1092 + 2500
    assert len(seeds) == 5
    counts = Counter(l for r in all_rows for l in r["labels"])
    assert all(counts[l] >= 200 for l in taxonomy.ids), counts
    cardinality = Counter(min(len(r["labels"]), 4) for r in all_rows)
    assert all(cardinality[k] > 0 for k in range(5))
    assert cardinality[0] / len(all_rows) >= 0.30
    report = check_files(split_paths(DATA_DIR), taxonomy)
    assert report.template_score <= 0.05


def test_corpus_is_shaped_like_real_reports(splits, taxonomy):
    """Length, paraphrase, styles, script and noise: the corpus v2 targets."""
    all_rows = rows(splits)
    p = profile(all_rows, taxonomy)
    assert p.median_length >= 130 and p.share_at_least[180] >= 0.30 and p.share_at_least[350] >= 0.08
    assert sum(len(r["text"]) >= 700 for r in all_rows) >= 20
    assert all(share >= 0.30 for share in p.cue_free.values()), p.cue_free
    new_styles = {s: n for s, n in p.styles.items() if s != "mixed_v1"}
    assert len(new_styles) >= 11 and all(n >= 100 for n in new_styles.values()), new_styles
    assert p.traditional / p.n >= 0.25
    native = sum(is_traditional(r["text"]) for r in all_rows if r["style"] == "tw_hk_news")
    assert native >= p.traditional / 3
    converter = sum(
        any(k in noise_kinds(r["text"]) for k in ("converter", "stray_question_mark", "doubled_punctuation"))
        for r in all_rows
    )
    assert converter >= 80 and p.noise["fullwidth_digits"] and p.noise["emoji"] and p.noise["html_entity"]
    for mark in (180, 350, 700):  # negatives at every length: length is no cue for "no label"
        long = [r for r in all_rows if len(r["text"]) >= mark]
        assert sum(not r["labels"] for r in long) / len(long) >= 0.10, mark


def test_challenge_set_is_apart_from_training(taxonomy):
    challenge = read_jsonl(DATA_DIR / "challenge.jsonl")
    articles = read_jsonl(DATA_DIR / "challenge_articles.jsonl")
    assert len(challenge) >= 500 and len(articles) >= 40
    assert {a["format"] for a in articles} == {"html", "markdown", "text"}
    assert all(
        a["article_labels"] == sorted({l for p in a["paragraphs"] for l in p["labels"]}, key=taxonomy.ids.index)
        for a in articles
    )
    train = [r["text"] for r in read_jsonl(DATA_DIR / "train.jsonl")]
    assert shared_ngrams(challenge, train) < 0.15
    report = check_files([*split_paths(DATA_DIR), DATA_DIR / "challenge.jsonl"], taxonomy)
    assert report.ok, report.errors[:3]


def test_every_split_has_every_label(splits, taxonomy):
    for split in SPLITS:
        present = {l for r in splits[split] for l in r["labels"]}
        assert present == set(taxonomy.ids), (split, set(taxonomy.ids) - present)


def test_build_reproduces_the_committed_splits(data_copy, taxonomy):
    before = {s: (data_copy / f"{s}.jsonl").read_text(encoding="utf-8") for s in SPLITS}
    build_corpus(taxonomy, data_copy)
    assert {s: (data_copy / f"{s}.jsonl").read_text(encoding="utf-8") for s in SPLITS} == before


def test_adding_examples_never_moves_old_ones(data_copy, taxonomy):
    before = {json.loads(l)["id"]: s for s in SPLITS for l in (data_copy / f"{s}.jsonl").open(encoding="utf-8")}
    (data_copy / "authored" / "99_new.txt").write_text(
        "# taxonomy_version: 1\n"
        "modem_pool | 民警在一处废弃厂房里发现三台仍在运行的猫池，设备上插满了来源不明的手机卡。\n"
        "- | 社区民警利用周末在广场开展反诈宣传，向过往群众发放宣传折页。\n",
        encoding="utf-8",
    )
    out = build_corpus(taxonomy, data_copy)
    after = {r.id: s for s, recs in out.items() for r in recs}
    assert len(after) == len(before) + 2
    assert all(after[i] == s for i, s in before.items())


def test_near_duplicates_are_kept_in_one_split(data_copy, taxonomy):
    text = "2022年，某地警方打掉一个接码平台，平台为号商提供手机号和验证码，用于批量注册网络账号，涉案金额300余万元。"
    twin = text.replace("300", "450").replace("2022", "2023")
    (data_copy / "authored" / "99_twins.txt").write_text(
        f"# taxonomy_version: 1\nsms_code_platform | {text}\nsms_code_platform | {twin}\n", encoding="utf-8"
    )
    out = build_corpus(taxonomy, data_copy)
    where = {r.text: s for s, recs in out.items() for r in recs}
    assert where[text] == where[twin]


@pytest.mark.parametrize(
    "line, message",
    [
        ("海口警方查获猫池设备一台。", "expected 'LABELS | TEXT'"),
        ("1、sim_card_supply | 江苏泰兴警方破获贩卖手机卡案。", "unknown label '1、sim_card_supply'"),
        (" | 江苏泰兴警方破获贩卖手机卡案。", "no labels given"),
    ],
)
def test_authoring_file_errors_name_file_and_line(tmp_path, taxonomy, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(f"# taxonomy_version: 1\n- | 全民反诈，人人有责。\n{line}\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=re.escape(f"{path}:3: ") + ".*" + re.escape(message)):
        parse_authoring_file(path, taxonomy, "authored")


def corrupt(data_dir: Path, split: str, edit) -> Path:
    path = data_dir / f"{split}.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def set_field(lines, n, **fields):
    row = json.loads(lines[n])
    row.update(fields)
    lines[n] = json.dumps(row, ensure_ascii=False)


def drop_field(lines, n, name):
    row = json.loads(lines[n])
    del row[name]
    lines[n] = json.dumps(row, ensure_ascii=False)


def copy_line(lines, n, tweak=lambda r: r):
    row = tweak(json.loads(lines[n]))
    lines.append(json.dumps(row, ensure_ascii=False))


CORRUPTIONS = {
    "invalid JSON": ("dev", lambda l: l.__setitem__(2, l[2][:-5]), "dev.jsonl:3: invalid JSON"),
    "missing field": ("dev", lambda l: drop_field(l, 4, "labels"), "dev.jsonl:5: missing fields ['labels']"),
    "wrong type": (
        "dev",
        lambda l: set_field(l, 1, labels="modem_pool"),
        "dev.jsonl:2: wrong types: labels should be list",
    ),
    "unknown label": (
        "test",
        lambda l: set_field(l, 0, labels=["modem-pool"]),
        "test.jsonl:1: unknown label 'modem-pool'",
    ),
    "label newer than record": (
        "test",
        lambda l: set_field(l, 0, taxonomy_version=0),
        "test.jsonl:1: label 'sim_card_supply' was added after taxonomy version 0",
    ),
    "empty text": ("dev", lambda l: set_field(l, 7, text="   "), "dev.jsonl:8: empty text"),
    "duplicate id": (
        "dev",
        lambda l: copy_line(l, 0, lambda r: {**r, "text": "完全不同的一段话，用来制造重复编号的记录。"}),
        "duplicate id",
    ),
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_data_check_fails_on_each_kind_of_corruption(data_copy, taxonomy, capsys, kind):
    split, edit, message = CORRUPTIONS[kind]
    corrupt(data_copy, split, edit)
    path = data_copy / f"{split}.jsonl"  # the corrupted file alone: the whole corpus takes seconds
    report = check_files([path], taxonomy)
    assert not report.ok
    assert any(message in e for e in report.errors), report.errors
    assert main(["data", "check", str(path)]) == 1
    assert "data check: FAILED" in capsys.readouterr().out


def test_data_check_fails_on_duplicates_across_splits(data_copy, taxonomy):
    dev_row = json.loads((data_copy / "dev.jsonl").read_text(encoding="utf-8").splitlines()[3])
    exact = {**dev_row, "id": "copy-exact"}
    near = {**dev_row, "id": "copy-near", "text": dev_row["text"][:-6] + "（完）"}
    with open(data_copy / "train.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(exact, ensure_ascii=False) + "\n" + json.dumps(near, ensure_ascii=False) + "\n")
    errors = check_files(split_paths(data_copy), taxonomy).errors
    assert any("same text as" in e and "dev.jsonl:4" in e for e in errors)
    assert any("near-duplicate of" in e for e in errors)


def test_template_score_above_the_limit_fails(tmp_path, taxonomy):
    rows = [
        {
            "id": f"t{i}",
            "text": f"2022年，某地警方打掉一个接码平台，平台为号商提供手机号和验证码，涉案金额{i}00余万元。",
            "labels": ["sms_code_platform"],
            "source": "authored",
            "group": f"t{i}",
            "taxonomy_version": 1,
        }
        for i in range(10)
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    report = check_files([path], taxonomy)
    assert report.template_score == 1.0
    assert any("template score" in e for e in report.errors)
