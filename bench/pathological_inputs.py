"""Worst-case request time per pathological input, and /healthz latency while they run.

    python bench/pathological_inputs.py [--repeat 3] [--clients 2] [--port 8766] [--model DIR]

The server (`heichan serve`, default settings: 2 inference threads, 10 s request budget) runs
on 127.0.0.1 in a subprocess. Each input kind is posted `--repeat` times from `--clients`
concurrent clients while one more client polls /healthz every 20 ms. The inputs are the ones
from the hardening issue (super-linear markup, a 2 MB paragraph of digits with threshold 0,
bodies that used to give 500s), each at the size the issue gave and, for the markup ones, scaled
up to just under the 2 MB body limit. Prints, per kind: body size, the statuses seen and the
worst time; then /healthz p50/p99/max and the server's resident memory at the end.

Every loop is bounded: kinds x repeat requests, one poll every 20 ms until they are done.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from heichan.service.launch import start_server, stop_server

LIMIT = 1_990_000  # bytes of text: the JSON body stays under the 2 MB default limit


def _scaled(unit: str, prefix: str = "", size: int = LIMIT) -> str:
    """`prefix` + `unit` repeated, as long as its JSON string stays under `size` bytes."""
    return prefix + unit * ((size - _json_size(prefix)) // _json_size(unit))


def _json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def _corpus_article(size: int) -> str:
    """Distinct corpus paragraphs, blank-line separated, up to `size` bytes of JSON."""
    from heichan.labels.corpus import load_split

    paragraphs = [r.text for s in ("train", "dev", "test") for r in load_split(s)]
    out, used, i = [], 0, 0
    while used < size - 2000:
        text = f"{paragraphs[i % len(paragraphs)]}（{i}）"
        out.append(text)
        used += _json_size(text) + 4
        i += 1
    return "\n\n".join(out)


def inputs() -> dict[str, bytes]:
    """Kind → raw JSON body."""
    rng = random.Random(0)

    def body(text: str, **extra) -> bytes:
        return json.dumps({"text": text, **extra}, ensure_ascii=False).encode()

    article = _corpus_article(LIMIT)
    return {
        "auto '# t' + '[' x 100k": body("# t\n" + "[" * 100_000),
        "auto '# t' + '[' x 2MB": body(_scaled("[", "# t\n")),
        "html '<a ' x 33k": body("<p>x</p><p>" + "<a " * 33_333),
        "html '<a ' x 2MB": body(_scaled("<a ", "<p>x</p><p>")),
        "markdown '![' x 50k": body("![" * 50_000, format="markdown"),
        "markdown '![' x 2MB": body(_scaled("!["), format="markdown"),
        "html '<!--' x 25k": body("<!--" * 25_000, format="html"),
        "html '<!--' x 2MB": body(_scaled("<!--"), format="html"),
        "text blank lines 2MB": body(_scaled("\n", "x")),
        "text 'ab' lines 2MB": body(_scaled("ab\n")),
        "digits 2MB, threshold 0": body("".join(rng.choice("0123456789") for _ in range(LIMIT)), threshold=0.0),
        "corpus paragraphs 2MB": body(article),
        "corpus paragraphs 2MB, threshold 0": body(article, threshold=0.0),
        "lone surrogate": b'{"text": "\\ud800 abc"}',
        "html '<![ x'": body("<![ x", format="html"),
        "JSON nested 100k deep": b"[" * 100_000,
        "threshold '0.5' (string)": body("民警查获猫池设备6台。", threshold="0.5"),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="posts per input kind (default 3)")
    parser.add_argument("--clients", type=int, default=2, help="concurrent posting clients (default 2)")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    args = parser.parse_args()

    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, ["--model", args.model] if args.model else [])
    health: list[tuple[float, float]] = []  # (when, seconds)
    health_errors = 0
    done = threading.Event()

    def poll_health() -> None:
        nonlocal health_errors
        with httpx.Client(base_url=base, timeout=30) as http:
            while not done.is_set():
                started = time.perf_counter()
                try:
                    ok = http.get("/healthz").status_code == 200
                except httpx.TransportError:
                    ok = False
                health.append((started, time.perf_counter() - started))
                health_errors += not ok
                time.sleep(0.02)

    def post(payload: bytes) -> tuple[int | str, float]:
        started = time.perf_counter()
        try:
            with httpx.Client(base_url=base, timeout=120) as http:
                r = http.post("/v1/tag", content=payload, headers={"content-type": "application/json"})
                status: int | str = r.status_code
                if r.status_code >= 400:
                    status = f"{r.status_code} {r.json()['error']['code']}"
        except httpx.TransportError as exc:
            status = type(exc).__name__
        return status, time.perf_counter() - started

    try:
        poller = threading.Thread(target=poll_health, daemon=True)
        poller.start()
        time.sleep(0.5)  # a baseline of idle /healthz calls
        rows = []
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            print(f"{'input':36} {'body':>8}  {'worst':>7}  {'healthz p99':>11}  statuses")
            for kind, payload in inputs().items():
                began = time.perf_counter()
                results = list(pool.map(post, [payload] * args.repeat))
                during = sorted(t for when, t in health if when >= began)
                p99 = 1000 * during[int(0.99 * (len(during) - 1))] if during else float("nan")
                statuses = ", ".join(sorted({str(s) for s, _ in results}))
                worst = max(t for _, t in results)
                rows.append((kind, worst))
                print(f"{kind:36} {len(payload) / 1e6:5.2f} MB  {worst:5.2f} s  {p99:8.1f} ms  {statuses}", flush=True)
        done.set()
        poller.join()
        memory = rss_mb(server.pid)
    finally:
        done.set()
        stop_server(server)

    times = sorted(t for _, t in health)
    kind, worst = max(rows, key=lambda r: r[1])
    print()
    print(f"worst request overall: {worst:.2f} s ({kind})")
    print(
        f"/healthz while they ran: {len(times)} calls, {health_errors} failed, "
        f"p50 {1000 * statistics.median(times):.1f} ms, p99 {1000 * times[int(0.99 * (len(times) - 1))]:.1f} ms, "
        f"max {1000 * times[-1]:.1f} ms"
    )
    print(f"server RSS at the end: {memory:.0f} MB")


if __name__ == "__main__":
    main()
