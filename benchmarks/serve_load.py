"""Load test of ``ferkit serve`` on loopback: many concurrent requests, good and bad uploads mixed.

    python benchmarks/serve_load.py                      # 200 requests at once, then an overload run
    python benchmarks/serve_load.py --requests 40 --phases normal

Starts ``ferkit serve --model poster_v2_open`` (random weights: speed does not depend on them) on a free port of
127.0.0.1 (or uses ``--url``), sends every request of the plan at once (bounded count, one shot, then it stops) and
prints a table: requests, status codes, p50/p99 latency per kind of upload, throughput, forward passes and mean
micro-batch size, the server's RSS before and after, and whether it is still healthy.

Kinds: ``photo`` (one JPEG, raw bytes), ``pair`` (two JPEGs, multipart), ``crop`` (a 48x48 face, ?detect=false);
bad: ``truncated`` (400), ``text`` (415), ``bomb`` (a 9000x9000 PNG of 60 KB, 413), ``wrong_type`` (415),
``empty`` (400). Phase ``normal``: ``--max-queue`` above the request count, so nothing is refused; phase ``overload``:
``--max-queue 16``, so the excess gets 503 + Retry-After instead of queueing in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "ferkit" / "resources" / "examples"
GOOD = ("photo", "pair", "crop")
EXPECTED = {"photo": 200, "pair": 200, "crop": 200, "truncated": 400, "text": 415, "bomb": 413, "wrong_type": 415,
            "empty": 400}


@dataclass
class Payload:
    kind: str
    path: str
    content: bytes | None = None
    files: list | None = None
    content_type: str | None = None


@dataclass
class Result:
    kind: str
    status: int
    seconds: float
    retry_after: str | None = None


def payloads() -> dict[str, Payload]:
    """One request of each kind, from ferkit's example photos (a synthetic face crop when FER+ is absent)."""
    from PIL import Image

    astronaut = (EXAMPLES / "astronaut.jpg").read_bytes()
    hopper = (EXAMPLES / "grace_hopper.jpg").read_bytes()
    crop = io.BytesIO()
    Image.open(io.BytesIO(hopper)).convert("L").crop((160, 90, 420, 350)).resize((48, 48)).save(crop, "PNG")
    bomb = io.BytesIO()
    Image.fromarray(np.zeros((9000, 9000), np.uint8)).save(bomb, "PNG", optimize=True)
    return {
        "photo": Payload("photo", "/v1/predict", astronaut, content_type="image/jpeg"),
        "pair": Payload("pair", "/v1/predict", files=[("file", ("a.jpg", astronaut, "image/jpeg")),
                                                        ("file", ("h.jpg", hopper, "image/jpeg"))]),
        "crop": Payload("crop", "/v1/predict?detect=false", crop.getvalue(), content_type="image/png"),
        "truncated": Payload("truncated", "/v1/predict", astronaut[:6000], content_type="image/jpeg"),
        "text": Payload("text", "/v1/predict", files=[("file", ("notes.txt", b"not a photo\n" * 40, "text/plain"))]),
        "bomb": Payload("bomb", "/v1/predict", bomb.getvalue(), content_type="image/png"),
        "wrong_type": Payload("wrong_type", "/v1/predict", astronaut, content_type="text/plain"),
        "empty": Payload("empty", "/v1/predict", b"", content_type="image/jpeg"),
    }


def plan(n: int, bad_share: float = 0.25) -> list[str]:
    """``n`` request kinds, deterministic: ``bad_share`` of them bad, the rest good, interleaved."""
    bad = [k for k in EXPECTED if k not in GOOD]
    n_bad = round(n * bad_share)
    kinds = [bad[i % len(bad)] for i in range(n_bad)] + [GOOD[i % len(GOOD)] for i in range(n - n_bad)]
    rng = np.random.default_rng(0)
    return [kinds[i] for i in rng.permutation(n)]


async def fire(url: str, kinds: list[str], table: dict[str, Payload], *, api_key: str | None = None,
               timeout: float = 300.0) -> list[Result]:
    """Send every request at once (one connection each) and wait for all answers."""
    import httpx

    headers = {"X-API-Key": api_key} if api_key else {}
    limits = httpx.Limits(max_connections=len(kinds), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits, headers=headers) as client:
        async def one(kind: str) -> Result:
            p = table[kind]
            t = time.perf_counter()
            if p.files is not None:
                r = await client.post(p.path, files=p.files)
            else:
                r = await client.post(p.path, content=p.content, headers={"Content-Type": p.content_type})
            return Result(kind, r.status_code, time.perf_counter() - t, r.headers.get("retry-after"))

        return list(await asyncio.gather(*(one(k) for k in kinds)))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summarize(results: list[Result], wall: float) -> dict:
    """Per kind: count, status codes, p50/p99 latency; overall: throughput, errors on good / bad requests."""
    rows = {}
    for kind in EXPECTED:
        rs = [r for r in results if r.kind == kind]
        if rs:
            codes = {c: sum(r.status == c for r in rs) for c in sorted({r.status for r in rs})}
            rows[kind] = {"n": len(rs), "codes": codes, "p50": percentile([r.seconds for r in rs], 50),
                          "p99": percentile([r.seconds for r in rs], 99)}
    good = [r for r in results if r.kind in GOOD]
    bad = [r for r in results if r.kind not in GOOD]
    images = sum(2 if r.kind == "pair" else 1 for r in good if r.status == 200)
    return {"rows": rows, "wall": wall, "requests": len(results),
            "good_ok": sum(r.status == 200 for r in good), "good": len(good),
            "good_5xx": sum(r.status >= 500 for r in good), "good_503": sum(r.status == 503 for r in good),
            "bad_4xx": sum(400 <= r.status < 500 for r in bad), "bad": len(bad),
            "bad_expected": sum(r.status == EXPECTED[r.kind] for r in bad),
            "retry_after": all(r.retry_after for r in results if r.status == 503),
            "p50": percentile([r.seconds for r in good if r.status == 200], 50),
            "p99": percentile([r.seconds for r in good if r.status == 200], 99),
            "rps": len(results) / wall, "images_per_s": images / wall}


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


def server_batches(url: str) -> tuple[float, float]:
    """(forward passes, faces) from the server's /metrics."""
    import httpx

    text = httpx.get(url + "/metrics").text
    def total(name: str) -> float:
        return sum(float(v) for v in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M))

    return total("ferkit_batch_faces_count"), total("ferkit_batch_faces_sum")


def healthy(url: str) -> bool:
    import httpx

    return httpx.get(url + "/healthz").status_code == 200 and httpx.get(url + "/readyz").status_code == 200


def run_phase(url: str, pid: int, n: int, bad_share: float) -> dict:
    """Warm up, then one burst of ``n`` requests; the summary with RSS and batch figures."""
    table = payloads()
    asyncio.run(fire(url, ["photo", "pair", "crop"], table))
    passes0, faces0 = server_batches(url)
    before = rss_mb(pid)
    t = time.perf_counter()
    results = asyncio.run(fire(url, plan(n, bad_share), table))
    summary = summarize(results, time.perf_counter() - t)
    passes1, faces1 = server_batches(url)
    summary.update(rss_before=before, rss_after=rss_mb(pid), passes=passes1 - passes0, faces=faces1 - faces0,
                   healthy=healthy(url))
    return summary


def format_table(title: str, s: dict) -> str:
    lines = [f"### {title}", "",
             "| kind | requests | status codes | p50 (s) | p99 (s) |", "| --- | ---: | --- | ---: | ---: |"]
    for kind, row in s["rows"].items():
        codes = ", ".join(f"{c}: {k}" for c, k in row["codes"].items())
        lines.append(f"| {kind} | {row['n']} | {codes} | {row['p50']:.2f} | {row['p99']:.2f} |")
    batch = s["faces"] / s["passes"] if s["passes"] else float("nan")
    lines += ["", f"- {s['requests']} requests at once in {s['wall']:.1f} s: {s['rps']:.1f} requests/s, "
              f"{s['images_per_s']:.1f} recognised images/s",
              f"- good requests: {s['good_ok']}/{s['good']} answered 200, {s['good_503']} refused (503), "
              f"{s['good_5xx'] - s['good_503']} other 5xx; latency of the 200s p50 {s['p50']:.2f} s, "
              f"p99 {s['p99']:.2f} s",
              f"- bad requests: {s['bad_expected']}/{s['bad']} got their expected 4xx ({s['bad_4xx']} 4xx in all)",
              f"- {s['faces']:.0f} faces in {s['passes']:.0f} forward passes (mean micro-batch {batch:.1f})",
              f"- server RSS {s['rss_before']:.0f} MiB before, {s['rss_after']:.0f} MiB after "
              f"({s['rss_after'] - s['rss_before']:+.0f} MiB); healthy afterwards: {s['healthy']}", ""]
    return "\n".join(lines)


def start_server(max_queue: int, threads: int, extra: list[str]) -> tuple[subprocess.Popen, str]:
    import httpx

    from ferkit.serve.background import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "ferkit", "serve", "--model", "poster_v2_open", "--port", str(port),
           "--max-queue", str(max_queue), "--threads", str(threads), "--log-format", "json", *extra]
    log = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"ferkit serve exited with {proc.returncode}")
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError("ferkit serve did not become ready in 150 s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=200, help="requests sent at once (default 200)")
    p.add_argument("--bad-share", type=float, default=0.25, help="share of bad uploads (default 0.25)")
    p.add_argument("--phases", default="normal,overload", help="normal and/or overload (comma-separated)")
    p.add_argument("--threads", type=int, default=2, help="PyTorch threads of the server (default 2)")
    p.add_argument("--request-timeout", type=float, default=120.0, help="server --request-timeout (default 120)")
    args = p.parse_args()
    if not 1 <= args.requests <= 1000:
        p.error("--requests must be between 1 and 1000 (a bounded local test)")
    print(f"CPU: {_cpu()}, {os.cpu_count()} cores; server threads {args.threads}")
    for phase in [x.strip() for x in args.phases.split(",") if x.strip()]:
        queue = args.requests + 16 if phase == "normal" else 16
        proc, url = start_server(queue, args.threads, ["--request-timeout", str(args.request_timeout)])
        try:
            s = run_phase(url, proc.pid, args.requests, args.bad_share)
        finally:
            proc.terminate()
            proc.wait(60)
        print(format_table(f"{phase}: {args.requests} requests, --max-queue {queue}", s))


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    main()
