"""`heichan data check`: validate corpus files and print their statistics.

Errors (any of them fails the check, each names file and line): invalid JSON, missing or
mistyped fields, unknown label ids, labels newer than the record's taxonomy version, duplicate
ids, empty text, exact or near-duplicate texts in different splits, and a template score above
the limit. Labels with fewer than `MIN_EXAMPLES` examples are reported as warnings: a label that
was just added may legitimately start small.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from heichan.model.text import is_traditional, normalize

from .corpus import NEAR_TWIN_JACCARD, char_ngrams, near_twin_pairs
from .profile import format_profile, profile
from .taxonomy import Taxonomy

MIN_EXAMPLES = 40
MAX_TEMPLATE_SCORE = 0.05
_TYPES = {"id": str, "text": str, "labels": list, "source": str, "group": str, "taxonomy_version": int}
_OPTIONAL = {"style": str}


@dataclass
class Row:
    split: str
    where: str  # "file:line"
    data: dict


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    template_score: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


def _read_rows(path: Path, report: CheckReport) -> None:
    split = path.stem
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        report.errors.append(f"{path}: cannot read as UTF-8 text: {exc}")
        return
    for n, line in enumerate(lines, start=1):
        where = f"{path}:{n}"
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            report.errors.append(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(data, dict):
            report.errors.append(f"{where}: expected a JSON object, found {type(data).__name__}")
            continue
        missing = [k for k in _TYPES if k not in data]
        if missing:
            report.errors.append(f"{where}: missing fields {missing}; every record needs {list(_TYPES)}")
            continue
        wrong = [
            f"{k} should be {t.__name__}"
            for k, t in (_TYPES | _OPTIONAL).items()
            if k in data and not isinstance(data[k], t)
        ]
        if wrong:
            report.errors.append(f"{where}: wrong types: {', '.join(wrong)}")
            continue
        report.rows.append(Row(split, where, data))


def check_files(paths: list[Path], taxonomy: Taxonomy, max_template_score: float = MAX_TEMPLATE_SCORE) -> CheckReport:
    """Validate JSONL corpus files; the file stem (train/dev/test/...) is the split name."""
    report = CheckReport()
    for path in paths:
        if not path.exists():
            report.errors.append(f"{path}: file not found")
            continue
        _read_rows(path, report)
    ids: dict[str, str] = {}
    for row in report.rows:
        d = row.data
        if not d["text"].strip():
            report.errors.append(f"{row.where}: empty text")
        if d["taxonomy_version"] > taxonomy.version:
            report.errors.append(
                f"{row.where}: taxonomy_version {d['taxonomy_version']} is newer than the taxonomy ({taxonomy.version})"
            )
        judged = {l.id for l in taxonomy.labels if l.since <= d["taxonomy_version"]}
        for label in d["labels"]:
            if label not in taxonomy.ids:
                report.errors.append(f"{row.where}: unknown label {label!r}. Known labels: {sorted(taxonomy.ids)}")
            elif label not in judged:
                report.errors.append(
                    f"{row.where}: label {label!r} was added after taxonomy version {d['taxonomy_version']} of this record"
                )
        if d["id"] in ids:
            report.errors.append(f"{row.where}: duplicate id {d['id']!r} (first at {ids[d['id']]})")
        else:
            ids[d["id"]] = row.where
    _check_duplicates(report)
    if report.template_score > max_template_score:
        report.errors.append(
            f"template score {report.template_score:.1%} is above {max_template_score:.0%}: "
            "too many paragraphs have a near-twin; rewrite them rather than vary names and numbers"
        )
    counts = Counter(l for row in report.rows for l in row.data["labels"])
    for label in taxonomy.ids:
        if counts[label] < MIN_EXAMPLES:
            report.warnings.append(f"label {label!r} has {counts[label]} examples (fewer than {MIN_EXAMPLES})")
    return report


def _check_duplicates(report: CheckReport) -> None:
    rows = [r for r in report.rows if r.data["text"].strip()]
    first_seen: dict[str, Row] = {}
    for row in rows:
        key = normalize(row.data["text"]).strip()
        if key in first_seen and first_seen[key].split != row.split:
            report.errors.append(f"{row.where}: same text as {first_seen[key].where} in another split")
        first_seen.setdefault(key, row)
    pairs = near_twin_pairs([r.data["text"] for r in rows])
    twins: set[int] = set()
    for i, j, sim in pairs:
        twins.update((i, j))
        if rows[i].split != rows[j].split:
            report.errors.append(
                f"{rows[j].where}: near-duplicate of {rows[i].where} in another split "
                f"(4-gram Jaccard {sim:.2f} > {NEAR_TWIN_JACCARD})"
            )
    report.template_score = len(twins) / len(rows) if rows else 0.0


def format_report(report: CheckReport, taxonomy: Taxonomy) -> str:
    splits = sorted({r.split for r in report.rows}, key=lambda s: (["train", "dev", "test"] + [s]).index(s))
    per = {s: Counter(l for r in report.rows if r.split == s for l in r.data["labels"]) for s in splits}
    width = max(len(i) for i in taxonomy.ids) + 2
    lines = [f"{'label':<{width}}" + "".join(f"{s:>11}" for s in splits) + f"{'total':>11}"]
    for label in taxonomy.ids:
        total = sum(per[s][label] for s in splits)
        lines.append(f"{label:<{width}}" + "".join(f"{per[s][label]:>11}" for s in splits) + f"{total:>11}")
    sizes = Counter(r.split for r in report.rows)
    lines.append(f"{'(paragraphs)':<{width}}" + "".join(f"{sizes[s]:>11}" for s in splits) + f"{len(report.rows):>11}")
    card = Counter(min(len(r.data["labels"]), 4) for r in report.rows)
    lines.append("")
    lines.append("labels per paragraph: " + "  ".join(f"{k if k < 4 else '4+'}: {card[k]}" for k in range(5)))
    trad = sum(is_traditional(r.data["text"]) for r in report.rows)
    n = max(len(report.rows), 1)
    lines.append(f"Traditional-character paragraphs: {trad} ({trad / n:.1%})")
    lines.append(
        f"template score (share with a near-twin, 4-gram Jaccard > {NEAR_TWIN_JACCARD}): "
        f"{report.template_score:.1%} (limit {MAX_TEMPLATE_SCORE:.0%})"
    )
    corpus = [r.data for r in report.rows if r.split != "challenge"]
    challenge = [r.data for r in report.rows if r.split == "challenge"]
    lines += ["", "corpus (train, dev, test):", *format_profile(profile(corpus, taxonomy))]
    if challenge:
        train = [r.data["text"] for r in report.rows if r.split == "train"]
        lines += [
            "",
            "challenge set:",
            *format_profile(profile(challenge, taxonomy)),
            f"character 8-grams of the challenge set also in train: {shared_ngrams(challenge, train):.1%}",
        ]
    lines.extend(f"warning: {w}" for w in report.warnings)
    lines.extend(f"error: {e}" for e in report.errors)
    lines.append("data check: " + ("OK" if report.ok else f"FAILED with {len(report.errors)} error(s)"))
    return "\n".join(lines)


def shared_ngrams(rows: list[dict], reference: list[str], n: int = 8) -> float:
    """Share of the distinct character n-grams of `rows` that also occur in `reference`."""
    ref: set[str] = set().union(*(char_ngrams(t, n) for t in reference)) if reference else set()
    grams: set[str] = set().union(*(char_ngrams(r["text"], n) for r in rows)) if rows else set()
    return len(grams & ref) / len(grams) if grams else 0.0
