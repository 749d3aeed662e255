"""What the corpus looks like: lengths, cue-free positives, styles, scripts and noise kinds.

`heichan data check` prints this profile; the corpus tests hold it to the targets of the
corpus v2 work (see README, "Corpus").
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from heichan.model.text import is_traditional, normalize

from .taxonomy import Taxonomy

NOISE_KINDS = {
    # a character followed by its reading or variant in parentheses, as page converters leave them
    "converter": re.compile(r"[\u3400-\u9fff][(（](?:[a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]{1,6}[1-5]?|[\u3400-\u9fff])[)）]"),
    "stray_question_mark": re.compile(r"[\u3400-\u9fff]\?+[\u3400-\u9fff]"),
    "doubled_punctuation": re.compile(r"([，。！？、；：,.!?])\1"),
    "fullwidth_digits": re.compile(r"[０-９]"),
    "html_entity": re.compile(r"&(?:[a-zA-Z]{2,8}|#\d{2,6});"),
    "emoji": re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2b06\u2934\u2935\u3030\u303d\u3297\u3299\ufe0f]"),
}
LENGTH_MARKS = (80, 130, 180, 350, 700)


def noise_kinds(text: str) -> list[str]:
    return [kind for kind, pattern in NOISE_KINDS.items() if pattern.search(text)]


def has_cue(text: str, cues: Sequence[str]) -> bool:
    norm = normalize(text)
    return any(normalize(c) in norm for c in cues)


@dataclass
class Profile:
    n: int = 0
    median_length: float = 0.0
    share_at_least: dict[int, float] = field(default_factory=dict)
    negatives: int = 0
    traditional: int = 0
    positives: dict[str, int] = field(default_factory=dict)
    cue_free: dict[str, float] = field(default_factory=dict)
    styles: Counter = field(default_factory=Counter)
    noise: Counter = field(default_factory=Counter)
    noisy: int = 0
    chains: int = 0  # paragraphs with 3 or more labels


def profile(rows: list[dict], taxonomy: Taxonomy) -> Profile:
    """Rows are corpus records (dicts with text, labels and optionally style)."""
    p = Profile(n=len(rows))
    if not rows:
        return p
    lengths = [len(r["text"]) for r in rows]
    p.median_length = statistics.median(lengths)
    p.share_at_least = {m: sum(x >= m for x in lengths) / len(rows) for m in LENGTH_MARKS}
    p.negatives = sum(not r["labels"] for r in rows)
    p.traditional = sum(is_traditional(r["text"]) for r in rows)
    p.styles = Counter(r.get("style", "") for r in rows)
    p.chains = sum(len(r["labels"]) >= 3 for r in rows)
    for r in rows:
        kinds = noise_kinds(r["text"])
        p.noise.update(kinds)
        p.noisy += bool(kinds)
    for label in taxonomy.labels:
        texts = [r["text"] for r in rows if label.id in r["labels"]]
        p.positives[label.id] = len(texts)
        p.cue_free[label.id] = sum(not has_cue(t, label.cues) for t in texts) / len(texts) if texts else 0.0
    return p


def format_profile(p: Profile) -> list[str]:
    if not p.n:
        return []
    lines = [
        f"paragraphs: {p.n}; length median {p.median_length:.0f} characters; "
        + ", ".join(f"≥{m}: {s:.1%}" for m, s in p.share_at_least.items())
    ]
    lines.append(
        f"no label: {p.negatives} ({p.negatives / p.n:.1%}); chains of ≥3 labels: {p.chains}; "
        f"Traditional: {p.traditional} ({p.traditional / p.n:.1%})"
    )
    lines.append("noisy paragraphs: " + f"{p.noisy} (" + ", ".join(f"{k} {v}" for k, v in p.noise.most_common()) + ")")
    lines.append("styles: " + ", ".join(f"{k} {v}" for k, v in sorted(p.styles.items())))
    lines.append("positives per label, and the share of them with none of the label's cue phrases:")
    for label, n in p.positives.items():
        lines.append(f"  {label:<22}{n:>6}   cue-free {p.cue_free[label]:.0%}")
    return lines
