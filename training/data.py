"""Records → label matrices, with the mask that keeps older annotations from teaching
"negative" for labels they were never judged on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heichan.labels import Taxonomy
from heichan.model.text import strip_artefacts


@dataclass
class LabelledSet:
    ids: list[str]
    texts: list[str]
    Y: np.ndarray  # (n, n_labels) 0/1 gold labels
    mask: np.ndarray  # (n, n_labels) True where the annotation judged that label
    groups: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows) -> LabelledSet:
        """The rows at the given indices, in that order."""
        return LabelledSet(
            [self.ids[i] for i in rows],
            [self.texts[i] for i in rows],
            self.Y[rows],
            self.mask[rows],
            [self.groups[i] for i in rows],
        )


def to_labelled_set(rows: list[dict], labels: list[str], taxonomy: Taxonomy) -> LabelledSet:
    """Build matrices over `labels`. A label added after a row's taxonomy_version is masked.

    Rows without `taxonomy_version` (outside test sets) count as judged on every label.
    """
    since = {l.id: l.since for l in taxonomy.labels}
    index = {l: i for i, l in enumerate(labels)}
    Y = np.zeros((len(rows), len(labels)), dtype=np.float32)
    mask = np.ones((len(rows), len(labels)), dtype=bool)
    for r, row in enumerate(rows):
        version = row.get("taxonomy_version")
        for label in row["labels"]:
            if label not in index:
                raise ValueError(f"record {row.get('id', r)!r}: unknown label {label!r}. Known labels: {labels}")
            Y[r, index[label]] = 1
        if version is not None:
            mask[r] = [since.get(l, 1) <= version for l in labels]
    texts = [strip_artefacts(row["text"])[0] for row in rows]  # what the tagger sees at inference
    return LabelledSet(
        [str(row.get("id", i)) for i, row in enumerate(rows)],
        texts,
        Y,
        mask,
        [row.get("group", str(row.get("id", i))) for i, row in enumerate(rows)],
    )


def untrainable_labels(data: LabelledSet, labels: list[str]) -> list[str]:
    """Labels with no judged positive or no judged negative: nothing to learn from.

    A newly added label is judged only by paragraphs annotated under its taxonomy version, so
    its negatives must come from re-judged or new paragraphs (see the README).
    """
    judged_pos = ((data.Y > 0.5) & data.mask).sum(0)
    judged_neg = ((data.Y < 0.5) & data.mask).sum(0)
    return [l for j, l in enumerate(labels) if judged_pos[j] == 0 or judged_neg[j] == 0]


def corpus_dataset(rows: list[dict], taxonomy: Taxonomy):
    """The corpus as a Hugging Face `datasets.Dataset`: `labels` is a sequence of `ClassLabel`
    over the taxonomy's ids, so label names and ids travel with the data."""
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    features = Features(
        {
            "id": Value("string"),
            "text": Value("string"),
            "labels": Sequence(ClassLabel(names=taxonomy.ids)),
            "group": Value("string"),
            "taxonomy_version": Value("int32"),
            "style": Value("string"),
        }
    )
    columns = {
        name: [row.get(name, "" if name != "taxonomy_version" else taxonomy.version) for row in rows]
        for name in features
        if name != "labels"
    }
    columns["labels"] = [list(row["labels"]) for row in rows]
    return Dataset.from_dict(columns, features=features)


def from_dataset(dataset, labels: list[str], taxonomy: Taxonomy) -> LabelledSet:
    """LabelledSet from a corpus dataset, decoding the ClassLabel ids back to label names."""
    names = dataset.features["labels"].feature.names
    rows = [{**row, "labels": [names[i] for i in row["labels"]]} for row in dataset]
    return to_labelled_set(rows, labels, taxonomy)
