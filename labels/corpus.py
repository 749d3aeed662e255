"""The labelled corpus: authoring files → records → fixed train/dev/test splits.

Authoring files (`labels/data/authored/*.txt`, `labels/data/seeds/*.txt`) hold one paragraph a
line as ``LABELS | TEXT``. LABELS is ``-`` for "no black-market activity" or space-separated
label ids, optionally with ``@name`` to put the line in a named group. Each file starts with
``# taxonomy_version: N``, the taxonomy version its annotations were made under.

`build_corpus` turns them into JSONL records and assigns every group to a split. Splits are
stable: a group already present in the split files keeps its split, so adding examples never
moves old ones. New groups are assigned by iterative stratification over labels.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from heichan.model.text import normalize

from .taxonomy import Taxonomy

DATA_DIR = Path(__file__).with_name("data")
SPLITS = ("train", "dev", "test")
SPLIT_RATIOS = {"train": 0.70, "dev": 0.15, "test": 0.15}
NEAR_TWIN_JACCARD = 0.6  # character 4-gram Jaccard above this = near-duplicate
FIELDS = ("id", "text", "labels", "source", "group", "taxonomy_version", "style")
_HEADER = re.compile(r"#\s*taxonomy_version:\s*(\d+)\s*$")
_STYLE = re.compile(r"#\s*style:\s*([a-z0-9_]+)\s*$")
DEFAULT_STYLE = "mixed_v1"  # files without a `# style:` line: the first corpus, many styles mixed
CHALLENGE_DIR = DATA_DIR / "challenge"


def char_ngrams(text: str, n: int = 4) -> set[str]:
    """The set of character n-grams of the normalised text, whitespace removed."""
    text = re.sub(r"\s+", "", normalize(text))
    if len(text) <= n:
        return {text} if text else set()
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class CorpusError(ValueError):
    """A corpus or authoring file is malformed; the message names file and line."""


@dataclass
class Record:
    id: str
    text: str
    labels: list[str]
    source: str
    group: str
    taxonomy_version: int
    style: str = DEFAULT_STYLE

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def parse_authoring_file(path: Path, taxonomy: Taxonomy, source: str) -> list[Record]:
    """Parse one ``LABELS | TEXT`` file into records (group defaults to the record id)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    match = _HEADER.match(lines[0]) if lines else None
    if not match:
        raise CorpusError(f"{path}:1: expected the header '# taxonomy_version: N'")
    version = int(match.group(1))
    if version > taxonomy.version:
        raise CorpusError(f"{path}:1: taxonomy_version {version} is newer than the taxonomy ({taxonomy.version})")
    records = []
    style = next((m.group(1) for m in map(_STYLE.match, lines[1:4]) if m), DEFAULT_STYLE)
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip() or line.startswith("#"):
            continue
        head, sep, text = line.partition(" | ")
        if not sep or not text.strip():
            raise CorpusError(f"{path}:{n}: expected 'LABELS | TEXT' (LABELS is '-' for none), found {line[:40]!r}")
        tokens = head.split()
        group = next((t[1:] for t in tokens if t.startswith("@")), None)
        labels = [t for t in tokens if not t.startswith("@") and t != "-"]
        judged = {l.id for l in taxonomy.labels if l.since <= version}
        for label in labels:
            if label not in judged:
                known = sorted(judged)
                raise CorpusError(
                    f"{path}:{n}: unknown label {label!r} for taxonomy version {version}. Known labels: {known}"
                )
        if not labels and "-" not in tokens:
            raise CorpusError(f"{path}:{n}: no labels given; write '-' for a paragraph with no label")
        text = text.strip()
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
        rid = f"{'s' if source != 'authored' else 'a'}-{digest[:12]}"
        records.append(
            Record(rid, text, sorted(set(labels), key=taxonomy.ids.index), source, group or rid, version, style)
        )
    return records


def read_authoring_files(taxonomy: Taxonomy, data_dir: Path = DATA_DIR) -> list[Record]:
    records = []
    for path in sorted((data_dir / "seeds").glob("*.txt")):
        records += parse_authoring_file(path, taxonomy, source=path.name)
    for path in sorted((data_dir / "authored").glob("*.txt")):
        records += parse_authoring_file(path, taxonomy, source="authored")
    for rec in records:  # a whole seed document is one group: its cases share wording
        if rec.source != "authored" and rec.group == rec.id:
            rec.group = f"seed-{rec.source.split('_')[0]}"
    seen: dict[str, Record] = {}
    for rec in records:
        if rec.id in seen:
            raise CorpusError(f"the same paragraph appears twice (id {rec.id}): {rec.text[:40]!r}")
        seen[rec.id] = rec
    return records


def near_twin_pairs(texts: list[str], threshold: float = NEAR_TWIN_JACCARD) -> list[tuple[int, int, float]]:
    """Index pairs whose character 4-gram Jaccard similarity exceeds `threshold`.

    Candidates come from an inverted index on rare 4-grams, so this stays fast on large corpora.
    """
    grams = [char_ngrams(t) for t in texts]
    index: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(grams):
        for gram in g:
            index[gram].append(i)
    shared: Counter = Counter()
    for members in index.values():
        if 1 < len(members) <= 200:  # grams in >200 paragraphs are boilerplate, not evidence of a twin
            for a in range(len(members)):
                for b in range(a + 1, len(members)):
                    shared[members[a], members[b]] += 1
    pairs = []
    for (i, j), count in shared.items():
        if count / max(len(grams[i]), len(grams[j])) > threshold / 2:  # cheap bound before the exact value
            sim = jaccard(grams[i], grams[j])
            if sim > threshold:
                pairs.append((i, j, sim))
    return pairs


def _merge_near_twin_groups(records: list[Record]) -> None:
    """Put near-duplicates into one group so that a split never separates them."""
    parent = {r.group: r.group for r in records}

    def find(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for i, j, _ in near_twin_pairs([r.text for r in records]):
        a, b = find(records[i].group), find(records[j].group)
        if a != b:
            parent[max(a, b)] = min(a, b)
    for r in records:
        r.group = find(r.group)


def assign_splits(records: list[Record], taxonomy: Taxonomy, previous: dict[str, str]) -> dict[str, str]:
    """Map every group to a split: keep `previous` assignments, stratify the new groups."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[r.group].append(r)
    assignment = {g: s for g, s in previous.items() if g in groups}
    label_total = Counter(l for r in records for l in r.labels)
    want = {s: {l: SPLIT_RATIOS[s] * label_total[l] for l in label_total} for s in SPLITS}
    size_want = {s: SPLIT_RATIOS[s] * len(records) for s in SPLITS}
    for g, s in assignment.items():
        for r in groups[g]:
            size_want[s] -= 1
            for l in r.labels:
                want[s][l] -= 1

    def rarest(g: str) -> tuple:
        labels = {l for r in groups[g] for l in r.labels}
        rarity = min((label_total[l] for l in labels), default=10**9)
        return (rarity, hashlib.sha1(g.encode()).hexdigest())

    for g in sorted((g for g in groups if g not in assignment), key=rarest):
        labels = Counter(l for r in groups[g] for l in r.labels)

        # the split missing the largest share of its target for this group's labels, then the
        # split missing the largest share of its target size
        def need(s: str, labels: Counter = labels) -> tuple[float, float]:
            label_need = sum(want[s][l] / (SPLIT_RATIOS[s] * label_total[l]) for l in labels)
            return label_need, size_want[s] / (SPLIT_RATIOS[s] * len(records))

        best = max(SPLITS, key=need)
        assignment[g] = best
        size_want[best] -= len(groups[g])
        for l, n in labels.items():
            want[best][l] -= n
    return assignment


def read_jsonl(path: Path) -> list[dict]:
    """Read a JSONL file; raises CorpusError naming the file and line of any invalid row."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{n}: invalid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise CorpusError(f"{path}:{n}: expected a JSON object, found {type(row).__name__}")
            rows.append(row)
    return rows


def load_split(split: str, data_dir: Path = DATA_DIR) -> list[Record]:
    """A split: train, dev, test, or challenge (the held-out set written apart from the rest)."""
    return [Record(**{k: row[k] for k in FIELDS if k in row}) for row in read_jsonl(data_dir / f"{split}.jsonl")]


def build_challenge(taxonomy: Taxonomy, data_dir: Path = DATA_DIR) -> tuple[list[Record], list[dict]]:
    """challenge.jsonl (paragraphs) and challenge_articles.jsonl (whole articles with gold per
    paragraph) from labels/data/challenge/: written apart from the training data, never trained on."""
    folder = data_dir / "challenge"
    records = [r for path in sorted(folder.glob("*.txt")) for r in parse_authoring_file(path, taxonomy, "challenge")]
    for r in records:
        r.source = "challenge"
    articles = []
    for gold in sorted((folder / "articles").glob("*.gold.txt")):
        stem = gold.name[: -len(".gold.txt")]
        raws = [p for p in gold.parent.glob(stem + ".*") if p.suffix in (".html", ".md", ".txt") and p != gold]
        if len(raws) != 1:
            raise CorpusError(f"{gold}: expected one raw article {stem}.html, .md or .txt beside it, found {len(raws)}")
        fmt = {".html": "html", ".md": "markdown", ".txt": "text"}[raws[0].suffix]
        paragraphs = parse_authoring_file(gold, taxonomy, "challenge")
        article_labels = sorted({l for p in paragraphs for l in p.labels}, key=taxonomy.ids.index)
        articles.append(
            {
                "id": stem,
                "raw": raws[0].read_text(encoding="utf-8"),
                "format": fmt,
                "paragraphs": [{"text": p.text, "labels": p.labels} for p in paragraphs],
                "article_labels": article_labels,
                "taxonomy_version": paragraphs[0].taxonomy_version if paragraphs else taxonomy.version,
            }
        )
    (data_dir / "challenge.jsonl").write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")
    (data_dir / "challenge_articles.jsonl").write_text(
        "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles), encoding="utf-8"
    )
    return records, articles


def build_corpus(taxonomy: Taxonomy, data_dir: Path = DATA_DIR) -> dict[str, list[Record]]:
    """Rebuild the split files from the authoring files; returns the records per split."""
    records = read_authoring_files(taxonomy, data_dir)
    _merge_near_twin_groups(records)
    previous = {}
    for split in SPLITS:
        path = data_dir / f"{split}.jsonl"
        if path.exists():
            previous.update({row["group"]: split for row in read_jsonl(path) if "group" in row})
    assignment = assign_splits(records, taxonomy, previous)
    out: dict[str, list[Record]] = {s: [] for s in SPLITS}
    for r in records:
        out[assignment[r.group]].append(r)
    for split, recs in out.items():
        (data_dir / f"{split}.jsonl").write_text("".join(r.to_json() + "\n" for r in recs), encoding="utf-8")
    return out
