"""The real server: `heichan serve` under uvicorn on a loopback port, over HTTP."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from heichan.service.launch import start_server, stop_server

CASE = "民警在出租屋内查获猫池设备6台、手机卡900余张，设备收到的验证码被自动上传到接码平台出售。"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(models_dir, admin_token):
    models = models_dir
    port = free_port()
    proc = start_server(
        port, ["--model", str(models / "v1"), "--models-dir", str(models)], {"HEICHAN_ADMIN_TOKEN": admin_token}
    )
    yield f"http://127.0.0.1:{port}"
    stop_server(proc)


def test_server_binds_loopback_and_tags_over_http(server):
    r = httpx.post(f"{server}/v1/tag", json={"text": CASE}, timeout=10)
    assert r.status_code == 200 and "modem_pool" in r.json()["labels"]
    assert (
        httpx.post(
            f"{server}/v1/tag", content=b"\xff\xfe", headers={"content-type": "application/json"}, timeout=10
        ).status_code
        == 400
    )


def test_concurrent_requests_during_a_reload_all_succeed(server, admin_token):
    results, stop = [], threading.Event()

    def client_loop():
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                r = http.post(f"{server}/v1/tag", json={"text": CASE})
                results.append((r.status_code, r.json().get("model", {}).get("version")))

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(client_loop) for _ in range(8)]
        time.sleep(1.0)
        reload = httpx.post(
            f"{server}/v1/admin/reload",
            json={"model": "v2"},
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=30,
        )
        time.sleep(1.0)
        stop.set()
        for f in futures:
            f.result()
    assert reload.status_code == 200, reload.text
    statuses = {s for s, _ in results}
    versions = [v for _, v in results]
    assert statuses == {200}, statuses
    assert len(results) > 40 and set(versions) == {"1", "2"}
    assert (
        versions.index("2") > 0
        and httpx.post(f"{server}/v1/tag", json={"text": CASE}).json()["model"]["version"] == "2"
    )
