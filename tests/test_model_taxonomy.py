"""A model carries the taxonomy it was trained with: tag, batch and serve use it, and a taxonomy
given on the command line must agree with it. Settings name the variable of a bad value."""

import shutil

import pytest
import yaml
from fastapi.testclient import TestClient

from heichan.batch import BatchConfig, BatchError, run_batch
from heichan.cli import main
from heichan.labels.taxonomy import TAXONOMY_PATH
from heichan.model import SHIPPED, load_tagger
from heichan.model.artifacts import write_manifest


@pytest.fixture(scope="module")
def renamed(tmp_path_factory):
    """The fast model, retrained (in name) under a taxonomy whose first label has another id."""
    model = tmp_path_factory.mktemp("renamed") / "model"
    shutil.copytree(SHIPPED["fast"], model)
    taxonomy = yaml.safe_load((model / "taxonomy.yaml").read_text(encoding="utf-8"))
    old = taxonomy["labels"][0]["id"]
    taxonomy["labels"][0]["id"] = "sim_card_dealing"
    (model / "taxonomy.yaml").write_text(yaml.safe_dump(taxonomy, allow_unicode=True), encoding="utf-8")
    manifest = load_tagger(SHIPPED["fast"]).manifest
    (model / "manifest.json").unlink()
    fields = {k: v for k, v in manifest.items() if k not in ("format_version", "files", "library_versions", "created")}
    fields["labels"] = ["sim_card_dealing" if label == old else label for label in manifest["labels"]]
    write_manifest(model, **fields)
    return model


def test_the_model_uses_its_own_taxonomy(renamed):
    tagger = load_tagger(renamed)
    assert tagger.labels[0] == "sim_card_dealing" and tagger.taxonomy.ids[0] == "sim_card_dealing"


def test_a_taxonomy_that_disagrees_with_the_model_is_a_one_line_error(renamed, tmp_path, capsys):
    article = tmp_path / "a.txt"
    article.write_text("民警查获猫池设备6台。", encoding="utf-8")
    assert main(["tag", str(article), "--model", str(renamed), "--taxonomy", str(TAXONOMY_PATH)]) == 2
    err = capsys.readouterr().err.strip()
    assert "sim_card_dealing" in err and "the given taxonomy" in err and len(err.splitlines()) == 1
    (tmp_path / "in.jsonl").write_text('{"id": "1", "text": "民警查获猫池设备6台。"}\n', encoding="utf-8")
    with pytest.raises(BatchError, match="sim_card_dealing"):
        run_batch(
            BatchConfig(
                str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), model=str(renamed), taxonomy=str(TAXONOMY_PATH)
            )
        )


def test_labels_endpoint_answers_from_the_served_model(renamed, ready):
    from heichan.service import Settings, create_app

    with TestClient(create_app(Settings(model_dir=str(renamed)))) as client:
        ready(client)
        ids = [label["id"] for label in client.get("/v1/labels").json()["labels"]]
    assert ids[0] == "sim_card_dealing"


def test_a_bad_setting_names_its_environment_variable(monkeypatch):
    from pydantic import ValidationError

    from heichan.service import Settings
    from heichan.service.settings import settings_error

    monkeypatch.setenv("HEICHAN_MAX_BATCH", "0")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert settings_error(info.value).startswith("HEICHAN_MAX_BATCH:")
