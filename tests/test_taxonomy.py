import re

import pytest

from heichan.cli import main
from heichan.labels import TaxonomyError, load_taxonomy

BRIEF_IDS = [
    "sim_card_supply",
    "modem_pool",
    "insider_leak",
    "personal_info_theft",
    "ground_promotion",
    "sms_code_platform",
    "captcha_solving",
    "bulk_registration",
    "account_farming",
    "account_unblocking",
    "malware_tools",
    "account_trading",
    "telecom_fraud",
    "online_gambling",
    "traffic_manipulation",
    "money_laundering",
]


def test_shipped_taxonomy_has_the_sixteen_labels_of_the_brief(taxonomy):
    assert taxonomy.ids == BRIEF_IDS
    assert taxonomy.version >= 1
    for label in taxonomy.labels:
        assert label.zh and label.en and label.definition and label.cues
        assert label.stage in ("upstream", "midstream", "downstream")


def test_labels_command_prints_every_label(capsys):
    assert main(["labels"]) == 0
    out = capsys.readouterr().out
    for label_id in BRIEF_IDS:
        assert re.search(rf"^{label_id}\s", out, re.M)


@pytest.mark.parametrize(
    "body, message",
    [
        ("labels: []", "integer 'version'"),
        ("version: 1\nlabels:\n  - {id: x, zh: x, en: x, stage: nowhere, since: 1, definition: d}", "stage 'nowhere'"),
        ("version: 1\nlabels:\n  - {id: x, zh: x, en: x, stage: upstream, since: 2, definition: d}", "since=2"),
        ("version: 1\nlabels:\n  - {id: x, zh: x, en: x, stage: upstream, since: 1}", "missing ['definition']"),
        ("version: 1\nlabels: [", "cannot read taxonomy"),
    ],
)
def test_malformed_taxonomy_is_refused_with_a_clear_message(tmp_path, body, message):
    path = tmp_path / "taxonomy.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(TaxonomyError, match=re.escape(message)):
        load_taxonomy(path)


def test_unknown_label_lookup_lists_the_known_ones(taxonomy):
    with pytest.raises(TaxonomyError, match="unknown label 'modem-pool'"):
        taxonomy.get("modem-pool")
