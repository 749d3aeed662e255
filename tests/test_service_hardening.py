"""Hardening (issue 11): no request can stall or bloat the service, no user input gives a 500,
reloads validate before they swap. One test per defect; correctness only, timings are in
bench/pathological_inputs.py. Nothing here depends on which model is shipped."""

import asyncio
import contextlib
import json
import re
import shutil
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heichan.model import segment
from heichan.model.artifacts import MANIFEST
from heichan.model.markup import CHUNK, break_long_lines, html_to_text, markdown_to_text
from heichan.model.ngram import EVIDENCE_BLOCK_CHARS, ByteBoundedCache, NgramTagger, make_vectorizer, preprocess
from heichan.model.segment import MAX_PARAGRAPH_CHARS, split_cases
from heichan.service import Settings, create_app
from heichan.service.errors import RequestGuard, redact_paths
from heichan.service.launch import start_server, stop_server

CASE = "民警在出租屋内查获猫池设备6台、手机卡900余张，设备收到的验证码被自动上传到接码平台出售。"
JSON = {"content-type": "application/json"}


def wait_until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code and body["request_id"] == response.headers["x-request-id"]
    return body


def manifest_of(model_dir):
    return json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))


def variant(models, name, edit):
    """A copy of models/v1 whose manifest is changed by `edit` (the checksums stay valid: the
    manifest does not list itself)."""
    target = models / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(models / "v1", target)
    manifest = manifest_of(target)
    edit(manifest)
    (target / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return name


@pytest.fixture(scope="module")
def client(models_dir, admin_token, ready):
    app = create_app(Settings(model_dir=str(models_dir / "v1"), models_dir=models_dir, admin_token=admin_token))
    with TestClient(app) as c:
        ready(c)
        yield c


@pytest.fixture
def auth(admin_token):
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture(scope="module")
def labels(client):
    return client.get("/v1/model").json()["labels"]


def check_article(article):
    """Offsets point into the cleaned text; paragraphs are non-empty and bounded."""
    for p in article.paragraphs:
        assert article.text[p.start : p.end] == p.text and p.text.strip() == p.text != ""
        assert len(p.text) <= MAX_PARAGRAPH_CHARS


# 1. Markup parsing is linear: the inputs that took 10-61 s (timings: bench/pathological_inputs.py)


@pytest.mark.parametrize(
    "text, fmt",
    [
        ("# t\n" + "[" * 100_000, "auto"),
        ("<p>x</p><p>" + "<a " * 33_333, "auto"),
        ("![" * 50_000, "markdown"),
        ("<!--" * 25_000, "html"),
        ("<![ x", "html"),  # an AssertionError inside Python's HTMLParser
        ("[x](" * 30_000, "markdown"),
        ("](" * 50_000, "auto"),
        ('<a x="' * 20_000, "html"),
        ("*a" * 50_000, "markdown"),
        ("。1、" * 30_000, "text"),
        ("\n" * 100_000 + "x" * 100_000, "text"),
    ],
)
def test_pathological_markup_segments_correctly(text, fmt):
    check_article(segment(text, fmt))


def test_issue_inputs_give_the_text_a_browser_shows():
    assert segment("# t\n" + "[" * 100_000).paragraphs == []  # a title of one letter, a line of brackets
    assert segment("![" * 50_000, "markdown").paragraphs == []
    assert segment("<!--" * 25_000, "html").paragraphs == []  # an unclosed comment runs to the end
    assert segment("<p>警方提醒</p><!-- 广告" + "<!--" * 1000, "html").text == "警方提醒"
    assert segment("<![ x", "html").paragraphs == []


def test_html_tokenizer():
    html = (
        '<html><head><title>标题</title><script>var s = "<p>不是正文</p>";</script></head><body>'
        "<p title=\"a>b\" data-x='<p>'>民警&amp;辅警<br/>查获猫池</p><!-- 注释 <p>x</p> -->"
        "<style>p{}</style><div>二、案件<br>接码平台</div><svg><text>图</text></svg>年龄<18岁 x<y"
    )
    assert html_to_text(html).split() == ["民警&辅警", "查获猫池", "二、案件", "接码平台", "年龄<18岁", "x<y"]


def test_markdown_links_images_and_unclosed_comments():
    md = "[![图](a.png)](http://x/(1)) 详见[通报](http://x/a_(b))，<!-- 未闭合 [a](b)"
    assert markdown_to_text(md) == " 详见通报，<!-- 未闭合 a"


def test_long_lines_are_cut_and_long_paragraphs_split_at_sentence_ends():
    text = "x" * (3 * CHUNK + 5)
    assert [len(line) for line in break_long_lines(text).split("\n")] == [CHUNK, CHUNK, CHUNK, 5]
    assert break_long_lines("a\n" * CHUNK) == "a\n" * CHUNK
    paragraph = "".join(f"民警查获猫池设备{i}台，手机卡九百余张。" for i in range(400))  # 7,890 characters
    article = segment(paragraph, "text")
    check_article(article)
    assert len(article.paragraphs) > 2 and all(p.text.endswith("。") for p in article.paragraphs)
    assert "".join(p.text for p in article.paragraphs) == paragraph


# 2. Evidence: bounded work and a cache bounded by bytes


class Sized:
    def __init__(self, nbytes):
        self.nbytes = nbytes


def test_cache_is_bounded_by_bytes_not_entries():
    cache = ByteBoundedCache(max_bytes=10_000)
    for i in range(100):
        cache.get(f"k{i}", lambda key: Sized(1_000))
        assert cache.bytes <= 10_000
    assert 0 < len(cache) < 10
    huge = cache.get("huge", lambda key: Sized(5_000))  # over a quarter of the bound: not kept
    assert huge.nbytes == 5_000 and "huge" not in cache._entries
    calls = []
    cache.get("k99", lambda key: calls.append(key))  # the most recent entry is served from the cache
    assert calls == []


@pytest.fixture(scope="module")
def tiny_ngram():
    """An n-gram tagger with random weights over a small vocabulary: the evidence algorithm does
    not depend on what the weights mean."""
    texts = [CASE, "警方提醒：不要出借手机卡和银行卡。", "0123456789 " * 20, "养号工作室批量注册账号，出售给下游。"]
    vectorizer = make_vectorizer(min_df=1).fit(texts)
    rng = np.random.default_rng(0)
    n = len(vectorizer.get_feature_names_out())
    return NgramTagger(
        vectorizer,
        rng.normal(size=(3, n)).astype(np.float32),
        np.zeros(3, np.float32),
        np.tile(np.array([1.0, 0.0], np.float32), (3, 1)),
        ["a", "b", "c"],
        np.full(3, 0.5),
    )


def reference_explain(tagger, text, label):
    """The evidence algorithm written plainly, one character at a time."""
    row = tagger.vectorizer.transform([text])
    weight = dict(zip(row.indices.tolist(), (row.data * tagger.coef[label, row.indices] * tagger.platt[label, 0])))
    haystack = preprocess(text)
    occurrences = [
        (i, n, tagger.vectorizer.vocabulary_[haystack[i : i + n]])
        for n in range(1, 5)
        for i in range(len(haystack) - n + 1)
        if tagger.vectorizer.vocabulary_.get(haystack[i : i + n]) in weight
    ]
    count = {f: sum(1 for *_, g in occurrences if g == f) for _, _, f in occurrences}
    per_char = np.zeros(len(haystack))
    for i, n, f in occurrences:
        per_char[i : i + n] += weight[f] / (n * count[f])
    if not len(per_char) or per_char.max() <= 0:
        return []
    strong = per_char >= 0.25 * per_char.max()
    edge = [bool(re.match(r"[\s\W_]", c)) for c in haystack]
    spans, i = [], 0
    while i < len(haystack):
        if not strong[i] or edge[i]:
            i += 1
            continue
        j = i
        while j < len(haystack) and strong[j]:
            j += 1
        while j > i and edge[j - 1]:
            j -= 1
        if j - i >= 2:
            spans.append((i, j))
        i = j
    return spans


@pytest.mark.parametrize(
    "text",
    [CASE, "警方提醒：不要出借手机卡和银行卡。  再次提醒！", "0123 4567 " * 30, "", "。。", "卡"],
)
def test_evidence_matches_the_plain_algorithm(tiny_ngram, text):
    for label in range(3):
        assert [(s, e) for s, e, _ in tiny_ngram.explain(text, label)] == reference_explain(tiny_ngram, text, label)


def test_evidence_for_a_huge_paragraph_is_blockwise_and_not_cached(tiny_ngram):
    digits = "0123456789" * 20_000  # 200,000 characters
    spans = [span for label in range(3) for span in tiny_ngram.explain(digits, label)]
    assert spans and all(0 <= s < e <= len(digits) for s, e, _ in spans)
    assert all(len(key) <= EVIDENCE_BLOCK_CHARS for key in tiny_ngram._occurrences._entries)
    assert tiny_ngram._occurrences.bytes <= tiny_ngram._occurrences.max_bytes


def test_a_paragraph_of_digits_with_threshold_zero(client, labels):
    """The request that cost ~193 MB per cache entry (at 2 MB): the paragraph is cut, evidence is
    computed per piece, and the answer is complete (or, on a very slow machine, a 503 timeout)."""
    digits = "".join(np.random.default_rng(0).choice(list("0123456789"), 100_000))
    r = client.post("/v1/tag", json={"text": digits, "threshold": 0.0})
    if r.status_code == 503:
        assert r.json()["error"]["code"] == "timeout" and r.headers["retry-after"]
        return
    body = r.json()
    assert r.status_code == 200 and "".join(p["text"] for p in body["paragraphs"]) == digits
    for p in body["paragraphs"]:
        assert len(p["text"]) <= MAX_PARAGRAPH_CHARS and set(p["labels"]) == set(labels) == set(p["evidence"])


# 1. (cont.) A time budget per request, and inference off the event loop


def test_a_request_over_its_budget_gets_503_and_its_work_stops(models_dir, ready):
    app = create_app(Settings(model_dir=str(models_dir / "v1"), models_dir=models_dir, request_timeout=0.3))
    with TestClient(app) as c:
        ready(c)
        tagger = app.state.holder.tagger
        calls, inner = [], tagger.explain

        def slow_explain(text, label):
            calls.append(time.monotonic())
            time.sleep(0.05)
            return inner(text, label)

        tagger.explain = slow_explain
        try:
            text = "\n\n".join(f"{CASE}（{i}）" for i in range(60))
            r = c.post("/v1/tag", json={"text": text, "threshold": 0.0})
            body = error(r, 503, "timeout")
            assert "HEICHAN_REQUEST_TIMEOUT" in body["message"] and r.headers["retry-after"]
            assert c.get("/healthz").status_code == 200
            wait_until(lambda: app.state.pool.pending == 0)  # the worker stopped at its next check
            assert len(calls) < 60 * 16  # far from the work the request asked for
        finally:
            del tagger.explain


@contextlib.contextmanager
def one_request_in_progress(app, client):
    """A /v1/tag request held inside the model until the block ends."""
    tagger, release = app.state.holder.tagger, threading.Event()
    inner = tagger.predict_proba
    tagger.predict_proba = lambda texts: (release.wait(10), inner(texts))[1]
    worker = threading.Thread(target=lambda: client.post("/v1/tag", json={"text": CASE}))
    try:
        worker.start()
        wait_until(lambda: app.state.pool.pending == 1)
        yield
    finally:
        release.set()
        worker.join()
        del tagger.predict_proba


def test_healthz_answers_while_every_worker_is_busy(models_dir, ready):
    app = create_app(Settings(model_dir=str(models_dir / "v1"), models_dir=models_dir, workers=1))
    with TestClient(app) as c:
        ready(c)
        with one_request_in_progress(app, c):
            assert c.get("/healthz").json() == {"status": "ok"}
            assert c.get("/readyz").status_code == 200


# 3. No 500 from user input


def test_lone_surrogates_are_replaced_not_a_500(client):
    r = client.post(
        "/v1/tag", content=b'{"text": "\\ud800 abc \\udfff\\ud83d\\ude00 ' + CASE.encode() + b'"}', headers=JSON
    )
    assert r.status_code == 200
    body = json.loads(r.content.decode("utf-8"))  # valid UTF-8
    assert "\ufffd abc \ufffd\U0001f600" in body["text"]
    for p in body["paragraphs"]:
        assert body["text"][p["start"] : p["end"]] == p["text"]
    batch = client.post(
        "/v1/tag/batch", content=b'{"articles": [{"text": "\\udc00 ' + CASE.encode() + b'"}]}', headers=JSON
    )
    assert batch.status_code == 200


def test_html_that_breaks_pythons_parser_is_not_a_500(client):
    for text in ("<![ x", "<!", "</", "<?", "<a b='", "<![CDATA[", "&#xD800;民警查获", "<p>&#55296;</p>"):
        assert client.post("/v1/tag", json={"text": text, "format": "html"}).status_code == 200, text


def test_deeply_nested_json_is_invalid_json(client):
    for body in (b"[" * 100_000, b'{"text": ' + b"[" * 100_000, b'{"a":' * 50_000):
        message = error(client.post("/v1/tag", content=body, headers=JSON), 422, "invalid_json")["message"]
        assert message == "body is not valid JSON: nested too deeply"


@pytest.mark.parametrize(
    "payload",
    [
        {"text": CASE, "threshold": "0.5"},
        {"text": CASE, "threshold": True},
        {"text": CASE, "threshold": {"modem_pool": "0.5"}},
        {"text": CASE, "threshold": {"modem_pool": False}},
        {"text": CASE, "threshold": [0.5]},
        {"text": CASE, "evidence": "true"},
        {"text": CASE, "evidence": 1},
        {"text": CASE, "format": 1},
    ],
)
def test_types_are_strict(client, payload):
    error(client.post("/v1/tag", json=payload), 422, "validation_error")


def test_integer_thresholds_are_numbers(client, labels):
    assert client.post("/v1/tag", json={"text": CASE, "threshold": 1}).status_code == 200
    assert client.post("/v1/tag", json={"text": CASE, "threshold": {labels[0]: 0}}).status_code == 200


def test_errors_never_echo_large_input(client, labels):
    key = "x" * 140_000
    r = client.post("/v1/tag", json={"text": CASE, "threshold": {key: 0.5, "y": 0.1, "z": 0.2, "w": 0.3}})
    message = error(r, 422, "unknown_label")["message"]
    assert len(r.content) < 200 + 30 * len(labels) and "and 1 more" in message and labels[0] in message
    r = client.post("/v1/tag", json={"text": CASE, key: 1})
    assert len(error(r, 422, "validation_error")["message"]) < 300
    r = client.post("/v1/tag", content=b'{"text": "abc", "threshold": {"\\ud800": 0.5}}', headers=JSON)
    error(r, 422, "unknown_label")
    r.content.decode("utf-8")


def test_invalid_json_message_reads_well(client):
    headers = {"content-type": "application/json"}
    message = error(client.post("/v1/tag", content=b'{"text": "abc', headers=headers), 422, "invalid_json")["message"]
    assert message == "body is not valid JSON: Unterminated string starting at character 9"
    message = error(client.post("/v1/tag", content=b'{"text": }', headers=headers), 422, "invalid_json")["message"]
    assert message == "body is not valid JSON: Expecting value at character 9"


def test_a_body_that_is_not_declared_json_gets_a_hint(client):
    r = client.post(
        "/v1/tag", content=json.dumps({"text": CASE}), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert "Content-Type: application/json" in error(r, 422, "validation_error")["message"]


# 4. Reload: validated and warmed up before the swap; its own worker; authentication first


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda m: m.update(thresholds=m["thresholds"][:3]), "3 thresholds"),
        (lambda m: m.update(thresholds=[str(t) for t in m["thresholds"]]), "thresholds"),
        (lambda m: m.update(thresholds=[True] * len(m["labels"])), "thresholds"),
        (lambda m: m.update(thresholds=[1.5] * len(m["labels"])), "thresholds"),
        (lambda m: m.update(labels=",".join(m["labels"])), "labels"),
        (lambda m: m.update(labels=[1] * len(m["labels"])), "labels"),
        (lambda m: m.update(version=["1"]), "version"),
        (lambda m: m.update(format_version="1"), "format_version"),
        (lambda m: m.update(backend=None), "backend"),
        (lambda m: m.update(files=["weights"]), "files"),
        (lambda m: m["files"].update({"../../../etc/hostname": "0" * 64}), "outside the model directory"),
        (lambda m: m["files"].update({"/etc/hostname": "0" * 64}), "outside the model directory"),
        (lambda m: m.clear(), "format_version"),
    ],
)
def test_reload_refuses_a_bad_manifest_with_422(client, models_dir, auth, edit, words):
    name = variant(models_dir, "bad-manifest", edit)
    body = error(client.post("/v1/admin/reload", json={"model": name}, headers=auth), 422, "invalid_model")
    assert words in body["message"] and str(models_dir) not in body["message"]
    assert client.post("/v1/tag", json={"text": CASE}).json()["model"]["version"] == "1"  # the old model serves


def test_reload_refuses_a_manifest_that_is_not_json_and_files_that_leave_the_directory(
    client, models_dir, auth, tmp_path
):
    name = variant(models_dir, "not-json", lambda m: None)
    (models_dir / name / MANIFEST).write_text("{", encoding="utf-8")
    error(client.post("/v1/admin/reload", json={"model": name}, headers=auth), 422, "invalid_model")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret", encoding="utf-8")
    name = variant(models_dir, "symlinked-file", lambda m: m["files"].update({"link.txt": "0" * 64}))
    (models_dir / name / "link.txt").symlink_to(outside)
    body = error(client.post("/v1/admin/reload", json={"model": name}, headers=auth), 422, "invalid_model")
    assert "outside the model directory" in body["message"]


def test_reload_never_gives_500_and_warms_up_before_swapping(client, models_dir, auth, monkeypatch):
    name = variant(models_dir, "fine", lambda m: None)

    def broken_warm_up(*args, **kwargs):
        raise IndexError("index 3 is out of bounds for axis 0 with size 3")

    monkeypatch.setattr("heichan.service.state.tag_article", broken_warm_up)
    body = error(client.post("/v1/admin/reload", json={"model": name}, headers=auth), 422, "invalid_model")
    assert "IndexError" in body["message"]
    monkeypatch.setattr("heichan.service.state.load_tagger", lambda *a, **k: 1 / 0)
    error(client.post("/v1/admin/reload", json={"model": name}, headers=auth), 422, "invalid_model")
    assert client.post("/v1/tag", json={"text": CASE}).json()["model"]["version"] == "1"


def test_reload_authenticates_before_it_validates(client, models_dir):
    for body in (b"garbage", b'{"model": "../etc"}', b'{"model": 3}', b"[" * 10_000):
        r = client.post("/v1/admin/reload", content=body, headers={"content-type": "application/json"})
        error(r, 401, "unauthorized")
    with TestClient(create_app(Settings(model_dir=str(models_dir / "v1"), models_dir=models_dir))) as c:
        error(c.post("/v1/admin/reload", content=b"garbage"), 403, "admin_disabled")


def test_reload_validates_its_body_once_authenticated(client, auth):
    headers = {**auth, "content-type": "application/json"}
    error(client.post("/v1/admin/reload", content=b"garbage", headers=headers), 422, "invalid_json")
    error(client.post("/v1/admin/reload", content=b'{"model": 3}', headers=headers), 422, "validation_error")
    r = client.post("/v1/admin/reload", content=b'{"model": "v1"}', headers=auth)  # curl -d without the header
    assert "Content-Type: application/json" in error(r, 422, "validation_error")["message"]


def test_reload_works_while_the_public_pool_is_full(models_dir, admin_token, auth, ready):
    app = create_app(
        Settings(
            model_dir=str(models_dir / "v1"), models_dir=models_dir, admin_token=admin_token, workers=1, max_pending=1
        )
    )
    with TestClient(app) as c:
        ready(c)
        with one_request_in_progress(app, c):
            error(c.post("/v1/tag", json={"text": CASE}), 503, "overloaded")
            r = c.post("/v1/admin/reload", json={"model": "v2"}, headers=auth)
            assert r.status_code == 200 and r.json()["model"]["version"] == "2"
        assert c.post("/v1/tag", json={"text": CASE}).json()["model"]["version"] == "2"


def test_no_absolute_server_paths_in_model_info_or_errors(client, models_dir, auth):
    def secret_paths(m):
        m.setdefault("config", {}).update(data_dir="/srv/secret/labels/data", taxonomy="/srv/secret/taxonomy.yaml")

    name = variant(models_dir, "with-paths", secret_paths)
    assert client.post("/v1/admin/reload", json={"model": name}, headers=auth).status_code == 200
    try:
        shown = client.get("/v1/model").text
        assert "/srv" not in shown and str(models_dir) not in shown
        config = client.get("/v1/model").json()["config"]
        assert config["data_dir"] == "data" and config["taxonomy"] == "taxonomy.yaml"
    finally:
        client.post("/v1/admin/reload", json={"model": "v1"}, headers=auth)
    assert redact_paths("cannot read /srv/models/v2/weights.safetensors: no", {"/srv/models/v2": "v2"}) == (
        "cannot read v2/weights.safetensors: no"
    )
    assert redact_paths("see https://example.org/a/b and /etc/passwd") == "see https://example.org/a/b and passwd"


def test_readyz_shows_no_server_paths(models_dir):
    with TestClient(create_app(Settings(model_dir=str(models_dir / "broken"), models_dir=models_dir))) as c:
        deadline = time.monotonic() + 10
        while "cannot load" not in c.get("/readyz").text and time.monotonic() < deadline:
            time.sleep(0.05)
        message = error(c.get("/readyz"), 503, "not_ready")["message"]
        assert "checksum mismatch" in message and str(models_dir) not in message


# 5. Smaller: metrics, 405, OpenAPI, body guard


def test_metrics_label_values_stay_bounded(client):
    for method in ("FOO", "BAR", "PROPFIND", "X" * 100):
        assert client.request(method, "/healthz").status_code == 405
    text = client.get("/metrics").text
    assert 'method="other"' in text and "FOO" not in text and "PROPFIND" not in text


def test_405_carries_allow(client):
    r = client.get("/v1/tag")
    assert error(r, 405, "method_not_allowed") and r.headers["allow"] == "POST"
    assert client.delete("/healthz").headers["allow"] == "GET"


def test_openapi_states_the_batch_cap_and_non_empty_text(models_dir):
    app = create_app(Settings(model_dir=str(models_dir / "v1"), models_dir=models_dir, max_batch=7))
    schemas = TestClient(app).get("/openapi.json").json()["components"]["schemas"]
    assert schemas["BatchRequest"]["properties"]["articles"]["maxItems"] == 7
    text = schemas["TagRequest"]["properties"]["text"]
    assert text["minLength"] == 1 and re.search(text["pattern"], "  x ") and not re.search(text["pattern"], " \n\t")


def run_guard(chunks, max_body_bytes=100, drain_bytes=1_000):
    """Feed `chunks` to a RequestGuard; return (chunks it read, messages it sent)."""
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    read, sent = [], []

    async def receive():
        read.append(1)
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):
        raise AssertionError("a body over the limit must not reach the application")

    class Metrics:
        def observe(self, *args):
            pass

    scope = {"type": "http", "method": "POST", "path": "/v1/tag", "headers": []}
    asyncio.run(RequestGuard(app, max_body_bytes, Metrics(), drain_bytes)(scope, receive, send))
    return len(read), sent


def test_body_guard_drains_before_413():
    read, sent = run_guard([b"x" * 60] * 10)  # 600 bytes in 10 chunks, limit 100
    assert read == 10 and sent[0]["status"] == 413
    assert (b"connection", b"close") not in sent[0]["headers"]  # everything was read: keep-alive is fine
    read, sent = run_guard([b"x" * 60] * 50)  # 3,000 bytes: beyond what the guard drains
    assert read < 50 and sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]


# The real server: urllib's upload-first client, keep-alive after bad input


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(models_dir):
    port = free_port()
    proc = start_server(port, ["--model", str(models_dir / "v1"), "--models-dir", str(models_dir)])
    yield f"http://127.0.0.1:{port}"
    stop_server(proc)


def test_urllib_gets_413_not_a_connection_reset(server):
    body = json.dumps({"text": "猫" * 1_000_000}).encode()  # 6 MB of JSON escapes: over 2 MB
    request = urllib.request.Request(f"{server}/v1/tag", data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413 and json.loads(caught.value.read())["error"]["code"] == "body_too_large"


def test_keep_alive_survives_bad_input(server):
    with httpx.Client(base_url=server, timeout=30) as http:
        for body in (b'{"text": "\\ud800 abc"}', b'{"text": "<![ x", "format": "html"}', b"[" * 100_000):
            assert http.post("/v1/tag", content=body, headers={"content-type": "application/json"}).status_code < 500
        assert http.post("/v1/tag", json={"text": CASE}).status_code == 200


# A markup-heavy generator: any mix of tags, comments, entities, Markdown and case markers
# segments without an exception, into bounded paragraphs whose offsets hold.

MARKUP = [
    "<p>", "</p>", "<div class='a>b'>", "</div>", "<br>", "<br/>", "<a href=\"x\">", "</a>", "<script>", "</script>",
    "<style>", "<!--", "-->", "<!DOCTYPE html>", "<![CDATA[", "]]>", "<?x?>", "</ p>", "<", ">", "&amp;", "&#55296;",
    "&#x", "&", "\n", "\n\n", " ", "\u3000", "\ud800", "猫池设备", "民警查获手机卡900余张", "。", "1、", "二、", "（三）",
    "**", "*", "__", "[", "]", "(", ")", "![", "](http://x)", "# ", "> ", "- ", "---\n", "微信扫一扫", "相关阅读\n", "x" * 45,
]  # fmt: skip


@settings(max_examples=1_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(MARKUP), max_size=40), st.sampled_from(["auto", "text", "html", "markdown"]))
def test_any_markup_segments(pieces, fmt):
    check_article(segment("".join(pieces), fmt))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=12), st.integers(2, 16))
def test_break_long_lines_cuts_only_long_lines(lengths, limit):
    text = "\n".join("x" * n for n in lengths)
    expected = "\n".join(
        "\n".join(line[i : i + limit] for i in range(0, len(line), limit)) if len(line) > limit else line
        for line in text.split("\n")
    )
    assert break_long_lines(text, limit) == expected


_OLD_CASE_START = re.compile(
    r"(?:(?<=[。！？；!?;])|(?<=^))\s*(?=(?:\d{1,2}[、．.](?!\d)|[一二三四五六七八九十]{1,3}、|"
    r"[（(][一二三四五六七八九十\d]{1,3}[）)]))"
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["。", "；", "!", "1、", "12.", "1.5", "二、", "（三）", "(4)", " ", "x", "案"]), max_size=30
    )
)
def test_case_splitting_is_unchanged_and_windowed_exactly(pieces):
    """The case-start pattern now starts at the sentence end (fast to find) and runs a window at
    a time; the cuts are the ones the original pattern made."""
    paragraph = "".join(pieces)
    cuts = [m.start() for m in _OLD_CASE_START.finditer(paragraph) if m.start() > 0]
    expected = [p.strip() for p in (paragraph[a:b] for a, b in zip([0] + cuts, cuts + [len(paragraph)])) if p.strip()]
    assert split_cases(paragraph) == expected
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys.modules["heichan.model.segment"], "CHUNK", 5)  # many windows
        assert split_cases(paragraph) == expected
