"""The REST service through FastAPI's TestClient."""

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

from heichan.service import Settings, create_app

CASE = "二、出租屋“猫池”窝点案。民警根据群众举报，在城东一处出租屋内查获猫池设备6台、手机卡900余张。"
ADVICE = "警方提醒：收到陌生验证码短信，不要转发给任何人。"
ARTICLE = f"# 市网警通报\n\n{ADVICE}\n\n一、“秒收”接码平台案。平台招揽卡商接入手机卡，对外出售短信验证码。{CASE}\n\n微信扫一扫\n关注该公众号\n"


@pytest.fixture(scope="module")
def models(models_dir):
    return models_dir


@pytest.fixture(scope="module")
def shipped(models):
    """The served model's manifest (the tests do not depend on which model is shipped)."""
    return json.loads((models / "v1" / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def client(models, admin_token, ready):
    app = create_app(Settings(model_dir=str(models / "v1"), models_dir=models, admin_token=admin_token, max_batch=4))
    with TestClient(app) as c:
        ready(c)
        yield c


def error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


def test_tag_an_article(client, shipped):
    r = client.post("/v1/tag", json={"text": ARTICLE})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == {"name": shipped["name"], "version": "1", "taxonomy_version": shipped["taxonomy_version"]}
    texts = [p["text"] for p in body["paragraphs"]]
    assert texts[0] == "市网警通报" and "微信扫一扫" not in body["text"]
    assert len(texts) == 4  # title, advice, and two cases that shared one line
    advice, platform, pool = body["paragraphs"][1:]
    assert advice["labels"] == []
    assert "sms_code_platform" in platform["labels"] and "modem_pool" in pool["labels"]
    assert set(body["labels"]) == {l for p in body["paragraphs"] for l in p["labels"]}
    for p in body["paragraphs"]:
        assert body["text"][p["start"] : p["end"]] == p["text"]
        assert set(p["evidence"]) == set(p["labels"]) and len(p["scores"]) == len(shipped["labels"])
        for spans in p["evidence"].values():
            assert all(p["start"] <= s < e <= p["end"] for s, e in spans)


def test_html_and_markdown_formats(client):
    html = f"<div><p>{ADVICE}</p><div><p>{CASE}</p></div></div>"
    body = client.post("/v1/tag", json={"text": html, "format": "html"}).json()
    assert [p["text"] for p in body["paragraphs"]] == [ADVICE, CASE]
    body = client.post("/v1/tag", json={"text": f"**{CASE}**", "format": "markdown", "evidence": False}).json()
    assert body["paragraphs"][0]["text"] == CASE and body["paragraphs"][0]["evidence"] == {}


def test_thresholds(client, shipped):
    body = client.post("/v1/tag", json={"text": ADVICE, "threshold": 0.0}).json()
    assert len(body["labels"]) == len(shipped["labels"])
    plain = client.post("/v1/tag", json={"text": CASE}).json()["labels"]
    lowered = client.post("/v1/tag", json={"text": CASE, "threshold": {"online_gambling": 0.0}}).json()["labels"]
    assert "online_gambling" not in plain and set(lowered) == set(plain) | {"online_gambling"}
    error(client.post("/v1/tag", json={"text": CASE, "threshold": {"modem-pool": 0.3}}), 422, "unknown_label")
    error(client.post("/v1/tag", json={"text": CASE, "threshold": 1.5}), 422, "validation_error")


@pytest.mark.parametrize(
    "payload, status, code",
    [
        ({"text": ""}, 422, "empty_text"),
        ({"text": " \n\t　"}, 422, "empty_text"),
        ({}, 422, "validation_error"),
        ({"text": 42}, 422, "validation_error"),
        ({"text": CASE, "format": "pdf"}, 422, "validation_error"),
        ({"text": CASE, "colour": "red"}, 422, "validation_error"),
        ([CASE], 422, "validation_error"),
    ],
)
def test_bad_requests(client, payload, status, code):
    error(client.post("/v1/tag", json=payload), status, code)


def test_invalid_json_utf8_and_size(client):
    headers = {"content-type": "application/json"}
    error(client.post("/v1/tag", content=b'{"text": "unterminated', headers=headers), 422, "invalid_json")
    error(client.post("/v1/tag", content='{"text": "猫池"}'.encode("gb18030"), headers=headers), 400, "invalid_utf8")
    body = error(client.post("/v1/tag", json={"text": "猫" * 1_000_000}), 413, "body_too_large")
    assert "2000000 bytes" in body["message"]


def test_request_id_is_echoed(client):
    r = client.post("/v1/tag", json={"text": ""}, headers={"X-Request-ID": "case-42"})
    assert r.headers["x-request-id"] == "case-42" and r.json()["error"]["request_id"] == "case-42"
    assert client.get("/healthz").headers["x-request-id"]


def test_batch(client):
    r = client.post(
        "/v1/tag/batch", json={"articles": [{"text": CASE}, {"text": ADVICE}, {"text": CASE, "evidence": False}]}
    )
    assert r.status_code == 200
    results = r.json()["results"]
    assert [bool(x["labels"]) for x in results] == [True, False, True]
    assert results[2]["paragraphs"][0]["evidence"] == {}
    error(client.post("/v1/tag/batch", json={"articles": [{"text": CASE}] * 5}), 413, "batch_too_large")
    error(client.post("/v1/tag/batch", json={"articles": []}), 422, "validation_error")
    body = error(client.post("/v1/tag/batch", json={"articles": [{"text": CASE}, {"text": "  "}]}), 422, "empty_text")
    assert "articles[1]" in body["message"]


def test_metadata_and_operations(client, shipped):
    assert [l["id"] for l in client.get("/v1/labels").json()["labels"]][:2] == ["sim_card_supply", "modem_pool"]
    manifest = client.get("/v1/model").json()
    assert manifest["backend"] == shipped["backend"] and "metrics" in manifest and "files" in manifest
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["model"]["name"] == shipped["name"]
    client.post("/v1/tag", json={"text": CASE})
    text = client.get("/metrics").text
    assert 'heichan_requests_total{method="POST",path="/v1/tag",status="200"}' in text
    assert 'heichan_requests_total{method="POST",path="/v1/tag",status="422"}' in text
    assert "heichan_request_seconds_bucket" in text and "heichan_paragraphs_tagged_total" in text
    version = shipped["taxonomy_version"]
    assert f'heichan_model_info{{name="{shipped["name"]}",taxonomy_version="{version}",version="1"}} 1.0' in text
    error(client.get("/v1/nothing"), 404, "not_found")


def test_openapi_documents_every_field_with_a_chinese_example(client):
    schema = client.get("/openapi.json").json()
    assert client.get("/docs").status_code == 200
    for name in ("TagRequest", "ParagraphTags", "TagResponse", "BatchRequest", "ModelInfo", "ErrorBody"):
        for field, spec in schema["components"]["schemas"][name]["properties"].items():
            assert spec.get("description"), (name, field)
    text_field = schema["components"]["schemas"]["TagRequest"]["properties"]["text"]
    assert any("猫池" in example for example in text_field["examples"])


def test_unexpected_errors_are_500_without_a_stack_trace(client, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("heichan.service.routes.tag_article", boom)
    r = TestClient(client.app, raise_server_exceptions=False).post("/v1/tag", json={"text": CASE})  # no second lifespan
    error(r, 500, "internal_error")
    assert "secret" not in r.text


def test_admin_reload(client, models, admin_token, shipped):
    auth = {"Authorization": f"Bearer {admin_token}"}
    error(client.post("/v1/admin/reload", json={"model": "v2"}), 401, "unauthorized")
    error(
        client.post("/v1/admin/reload", json={"model": "v2"}, headers={"Authorization": "Bearer wrong"}),
        401,
        "unauthorized",
    )
    for name in ("../models", "..", "/etc", "v1/../../x", "http://evil.invalid/m", ".hidden"):
        error(client.post("/v1/admin/reload", json={"model": name}, headers=auth), 422, "validation_error")
    error(client.post("/v1/admin/reload", json={"model": "v9"}, headers=auth), 404, "model_not_found")
    body = error(client.post("/v1/admin/reload", json={"model": "broken"}, headers=auth), 422, "invalid_model")
    assert "checksum mismatch" in body["message"] and str(models) not in body["message"]
    assert client.post("/v1/tag", json={"text": CASE}).json()["model"]["version"] == "1"  # old model still serving
    r = client.post("/v1/admin/reload", json={"model": "v2"}, headers=auth)
    assert r.status_code == 200 and r.json() == {
        "model": {"name": shipped["name"], "version": "2", "taxonomy_version": shipped["taxonomy_version"]},
        "previous": {"name": shipped["name"], "version": "1", "taxonomy_version": shipped["taxonomy_version"]},
    }
    assert client.post("/v1/tag", json={"text": CASE}).json()["model"]["version"] == "2"
    client.post("/v1/admin/reload", json={"model": "v1"}, headers=auth)


def test_reload_refuses_symlinks_out_of_the_models_dir(client, models, tmp_path, admin_token):
    outside = tmp_path / "outside"
    outside.mkdir()
    (models / "escape").symlink_to(outside)
    auth = {"Authorization": f"Bearer {admin_token}"}
    error(client.post("/v1/admin/reload", json={"model": "escape"}, headers=auth), 422, "invalid_model_name")


def test_admin_is_disabled_without_a_token(models):
    with TestClient(create_app(Settings(model_dir=str(models / "v1"), models_dir=models, admin_token=None))) as c:
        error(
            c.post("/v1/admin/reload", json={"model": "v2"}, headers={"Authorization": "Bearer "}),
            403,
            "admin_disabled",
        )


def test_not_ready_until_a_model_is_loaded(models):
    with TestClient(create_app(Settings(model_dir=str(models / "broken"), models_dir=models))) as c:
        deadline = time.monotonic() + 10
        while "cannot load" not in c.get("/readyz").text and time.monotonic() < deadline:
            time.sleep(0.05)
        body = error(c.get("/readyz"), 503, "not_ready")
        assert "checksum mismatch" in body["message"]
        r = c.post("/v1/tag", json={"text": CASE})
        error(r, 503, "not_ready")
        assert r.headers["retry-after"] == "1"
        assert c.get("/healthz").status_code == 200


def test_overload_answers_503_with_retry_after(models, ready):
    app = create_app(Settings(model_dir=str(models / "v1"), models_dir=models, workers=1, max_pending=1))
    with TestClient(app) as c:
        ready(c)
        tagger = app.state.holder.tagger
        slow = tagger.predict_proba
        tagger.predict_proba = lambda texts: (time.sleep(0.3), slow(texts))[1]
        statuses, retry = [], []

        def call():
            r = c.post("/v1/tag", json={"text": CASE})
            statuses.append(r.status_code)
            retry.append(r.headers.get("retry-after"))

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert 200 in statuses and 503 in statuses
    assert all(h == "1" for s, h in zip(statuses, retry) if s == 503)
