"""Requests/s and p50/p99 latency of the running service for a 3 KB article at 1, 8 and 32
concurrent clients, against the bare model's paragraphs/s measured in the same run.

    python bench/service_load.py [--seconds 10] [--port 8765]

The server (`heichan serve`, shipped model, 2 inference threads) runs on 127.0.0.1 in a
subprocess; the load generator is one asyncio process with N concurrent clients. Both share
this machine's cores, so the ratio is a lower bound for a server with the machine to itself.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from heichan.service.launch import start_server, stop_server


def articles_3kb(count: int = 200) -> list[str]:
    """Distinct 3 KB articles of consecutive corpus paragraphs. Requests rotate through them, so
    no cache sees the same paragraph twice within its capacity."""
    from heichan.labels.corpus import load_split

    paragraphs = [r.text for s in ("train", "dev", "test") for r in load_split(s)]
    out, i = [], 0
    while len(out) < count:
        parts, size = [], 0
        while size < 3000:
            text = paragraphs[i % len(paragraphs)]
            parts.append(text)
            size += len(text.encode("utf-8")) + 2
            i += 1
        out.append("\n\n".join(parts))
    return out


def bare_model(articles: list[str], seconds: float, model: str) -> float:
    """Paragraphs/s of segment + tag with evidence in this process: what a request does."""
    from heichan.model import load_tagger, tag_article

    tagger = load_tagger(model)
    paragraphs, k, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        paragraphs += len(tag_article(tagger, articles[k % len(articles)]).paragraphs)
        k += 1
    return paragraphs / (time.perf_counter() - start)


async def load_level(base: str, articles: list[str], clients: int, seconds: float) -> dict:
    latencies, errors, paragraphs = [], 0, 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

        async def client():
            nonlocal errors, paragraphs
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                r = await http.post("/v1/tag", json={"text": articles[len(latencies) % len(articles)]})
                latencies.append(time.perf_counter() - t)
                errors += r.status_code != 200
                paragraphs += len(r.json().get("paragraphs", []))

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "paragraphs_per_s": paragraphs / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each concurrency level")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--model", default="default", help="shipped model name or directory (default: default)")
    args = parser.parse_args()
    articles = articles_3kb()
    base = f"http://127.0.0.1:{args.port}"
    server = start_server(args.port, ["--model", args.model])
    try:
        levels = [asyncio.run(load_level(base, articles, c, args.seconds)) for c in (1, 8, 32)]
    finally:
        stop_server(server)
    bare = bare_model(articles, args.seconds, args.model)
    sizes = [len(a.encode("utf-8")) for a in articles]
    print(
        f"{len(articles)} distinct articles of {min(sizes)}-{max(sizes)} bytes, rotated; {args.seconds:.0f} s per level"
    )
    print(f"bare model (segment + tag + evidence, same process): {bare:.0f} paragraphs/s\n")
    print(
        f"{'clients':>8}{'requests':>10}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'para/s':>9}{'vs bare':>9}"
    )
    for level in levels:
        para_s = level["paragraphs_per_s"]
        print(
            f"{level['clients']:>8}{level['requests']:>10}{level['errors']:>8}{level['rps']:>9.1f}{level['p50_ms']:>9.1f}"
            f"{level['p99_ms']:>9.1f}{para_s:>9.0f}{para_s / bare:>9.2f}"
        )


if __name__ == "__main__":
    main()
