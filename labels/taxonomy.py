"""Load and validate `labels/taxonomy.yaml`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

TAXONOMY_PATH = Path(__file__).with_name("taxonomy.yaml")
STAGES = ("upstream", "midstream", "downstream")


class TaxonomyError(ValueError):
    """The taxonomy file is malformed, or a label id is not in it."""


@dataclass(frozen=True)
class Label:
    id: str
    zh: str
    en: str
    stage: str
    since: int
    definition: str
    cues: tuple[str, ...] = ()


@dataclass(frozen=True)
class Taxonomy:
    version: int
    labels: tuple[Label, ...]
    hard_cases: tuple[str, ...] = field(default=())

    @property
    def ids(self) -> list[str]:
        """Label ids in taxonomy order: the column order of every score matrix."""
        return [label.id for label in self.labels]

    def get(self, label_id: str) -> Label:
        for label in self.labels:
            if label.id == label_id:
                return label
        raise TaxonomyError(f"unknown label {label_id!r}. Known labels: {sorted(self.ids)}")

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "labels": [
                {
                    "id": l.id,
                    "zh": l.zh,
                    "en": l.en,
                    "stage": l.stage,
                    "since": l.since,
                    "definition": l.definition,
                    "cues": list(l.cues),
                }
                for l in self.labels
            ],
        }


def load_taxonomy(path: str | Path = TAXONOMY_PATH) -> Taxonomy:
    """Read and validate a taxonomy YAML file (default: the shipped one)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TaxonomyError(f"{path}: cannot read taxonomy: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("version"), int) or raw["version"] < 1:
        raise TaxonomyError(f"{path}: expected a mapping with an integer 'version' >= 1")
    labels, seen = [], set()
    for i, entry in enumerate(raw.get("labels") or []):
        missing = {"id", "zh", "en", "stage", "since", "definition"} - set(entry or {})
        if missing:
            raise TaxonomyError(f"{path}: label #{i + 1} is missing {sorted(missing)}")
        if entry["id"] in seen:
            raise TaxonomyError(f"{path}: label id {entry['id']!r} appears twice")
        if entry["stage"] not in STAGES:
            raise TaxonomyError(f"{path}: label {entry['id']!r} has stage {entry['stage']!r}; expected one of {STAGES}")
        if not (isinstance(entry["since"], int) and 1 <= entry["since"] <= raw["version"]):
            raise TaxonomyError(
                f"{path}: label {entry['id']!r} has since={entry['since']!r}; "
                f"expected an integer between 1 and the taxonomy version {raw['version']}"
            )
        seen.add(entry["id"])
        labels.append(
            Label(
                entry["id"],
                entry["zh"],
                entry["en"],
                entry["stage"],
                entry["since"],
                entry["definition"],
                tuple(entry.get("cues") or ()),
            )
        )
    if not labels:
        raise TaxonomyError(f"{path}: no labels defined")
    return Taxonomy(raw["version"], tuple(labels), tuple(raw.get("hard_cases") or ()))
