"""Serving speed and memory: `lightft serve` against a hand-written FastAPI + transformers.pipeline server.

    python bench/serve_speed.py                       # trains two MiniLM LoRA runs first if they are not there
    python bench/serve_speed.py --requests 400 --clients 8

Two real MiniLM-L6 LoRA runs (SST-2, 2 labels; TREC, 6 labels; 2,000 training rows, 1 epoch, --max-length 64) are
served by each server in its own process; C client threads (keep-alive connections) send one text per request, as
an application answering its own users does. Scenarios: one run (lightft default, lightft with micro-batching off
via --max-batch-size 1, lightft in fp32, and the reference server), and both runs with requests alternating between
them (lightft shares one MiniLM between the two adapters; the reference holds two exported models). The reference
is what a user writes without lightft: `lightft export` of each run, one `transformers.pipeline` per model, a sync
FastAPI endpoint (FastAPI's thread pool runs concurrent requests at once) and uvicorn. Each server's labels are
checked against lightft.load(run, precision="fp32"). Memory is the server process's resident set (VmHWM) after the
load.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "datasets"

REFERENCE_SERVER = r'''
import sys, uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline
models = {name: pipeline("text-classification", model=path, top_k=None, truncation=True, device="cpu")
          for name, path in (arg.split("=", 1) for arg in sys.argv[2:])}
app = FastAPI()
class Request(BaseModel):
    texts: list[str]
    model: str
@app.post("/predict")
def predict(request: Request):
    out = models[request.model](request.texts)
    return {"predictions": [{"label": max(row, key=lambda d: d["score"])["label"]} for row in out]}
print("ready", flush=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
'''


def texts(name: str, split: str, n: int) -> list[str]:
    with gzip.open(DATA / name / f"{split}.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    return [r["text"] if "text" in r else r["sentence"] for r in rows][:n]


def make_runs(root: Path) -> dict[str, Path]:
    import lightft
    from lightft.quickstart import minilm_path

    runs = {}
    for name in ("sst2", "trec"):
        path = root / f"{name}-lora"
        if not (path / "metrics.json").exists():
            lightft.train(model=str(minilm_path()), data=str(DATA / name), method="lora", limit_train=2000,
                          limit_eval=500, epochs=1, max_length=64, output=str(path), quiet=True, baseline=False)
        exported = root / f"{name}-exported"
        if not exported.exists():
            lightft.export(path, exported)
        runs[name] = path
    return runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], ready: str) -> subprocess.Popen:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"})
    for line in proc.stdout:
        if line.startswith(ready):
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
            return proc
    raise RuntimeError(f"server {command} did not start")


def wait_up(port: int) -> None:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(port: int, jobs: list[tuple[str, str]], clients: int) -> dict:
    """Send every (model, text) job as its own request from ``clients`` threads; labels and latencies per job."""
    labels: list = [None] * len(jobs)
    latency: list = [None] * len(jobs)
    counter = iter(range(len(jobs)))
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            model, text = jobs[i]
            body = json.dumps({"texts": [text], "model": model})
            t = time.perf_counter()
            conn.request("POST", "/predict", body, {"content-type": "application/json"})
            response = conn.getresponse()
            data = json.loads(response.read())
            latency[i] = time.perf_counter() - t
            assert response.status == 200, data
            labels[i] = data["predictions"][0]["label"]
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start_ = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start_
    ms = sorted(1000 * x for x in latency)
    return {"requests_per_s": len(jobs) / seconds, "p50_ms": statistics.median(ms),
            "p95_ms": ms[int(0.95 * (len(ms) - 1))], "labels": labels}


def measure(name: str, command: list[str], ready: str, port: int, jobs, warm, clients: int, want) -> dict:
    proc = start(command, ready)
    try:
        wait_up(port)
        load(port, warm, clients)  # first requests pay one-time costs
        result = load(port, jobs, clients)
        result["rss_mb"] = rss_mb(proc.pid)
        stats = None
        if "lightft" in name:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/stats")
            stats = json.loads(conn.getresponse().read())
        labels = result.pop("labels")
        result["agree"] = sum(str(a) == str(b) for a, b in zip(labels, want)) / len(want)
        result["texts_per_forward"] = stats["texts_per_forward"] if stats else None
    finally:
        proc.terminate()
        proc.wait(60)
    line = (f"{name:<44} {result['requests_per_s']:8.1f} req/s  p50 {result['p50_ms']:7.1f} ms  p95 "
            f"{result['p95_ms']:7.1f} ms  RSS {result['rss_mb']:6.0f} MB  labels agree {100 * result['agree']:.1f}%")
    if result["texts_per_forward"]:
        line += f"  texts/forward {result['texts_per_forward']}"
    print(line, flush=True)
    return result


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", default=str(Path(tempfile.gettempdir()) / "lightft-serve-bench"))
    p.add_argument("--requests", type=int, default=600)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--out", help="Write the figures as JSON here.")
    args = p.parse_args(argv)
    import torch

    import lightft

    root = Path(args.runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    runs = make_runs(root)
    sst2, trec = texts("sst2", "validation", args.requests), texts("trec", "test", args.requests)
    one = [("sst2", t) for t in sst2][: args.requests]
    two = [(("sst2", sst2[i // 2 % len(sst2)]) if i % 2 == 0 else ("trec", trec[i // 2 % len(trec)]))
           for i in range(args.requests)]
    reference = {name: lightft.load(run, precision="fp32") for name, run in runs.items()}
    want_one = [r["label"] for r in reference["sst2"].predict([t for _, t in one])]
    by_model = {m: iter(reference[m].predict([t for n, t in two if n == m])) for m in runs}
    want_two = [next(by_model[m])["label"] for m, _ in two]
    del reference
    warm = one[:32]
    lightft_cmd = [sys.executable, "-m", "lightft", "serve", f"sst2={runs['sst2']}", "--quiet"]
    ref_file = root / "reference_server.py"
    ref_file.write_text(REFERENCE_SERVER)
    print(f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {args.clients} clients, {args.requests} requests "
          "of one text each", flush=True)
    results = {}

    def lightft_run(label, extra, jobs, want, names=("sst2",)):
        port = free_port()
        cmd = [sys.executable, "-m", "lightft", "serve", *[f"{n}={runs[n]}" for n in names], "--quiet",
               "--port", str(port), *extra]
        results[label] = measure(label, cmd, "serving ", port, jobs, warm, args.clients, want)

    def reference_run(label, jobs, want, names=("sst2",)):
        port = free_port()
        cmd = [sys.executable, str(ref_file), str(port), *[f"{n}={root / f'{n}-exported'}" for n in names]]
        results[label] = measure(label, cmd, "ready", port, jobs, warm, args.clients, want)

    print("one run (SST-2 LoRA):")
    lightft_run("lightft serve (default: auto precision)", [], one, want_one)
    lightft_run("lightft serve --precision fp32", ["--precision", "fp32"], one, want_one)
    lightft_run("lightft serve --max-batch-size 1 (no micro-batches)", ["--max-batch-size", "1"], one, want_one)
    reference_run("FastAPI + transformers.pipeline (fp32)", one, want_one)
    print("two runs (SST-2 and TREC LoRA), requests alternating:")
    lightft_run("lightft serve, one shared base (auto)", [], two, want_two, names=("sst2", "trec"))
    lightft_run("lightft serve, one shared base (fp32)", ["--precision", "fp32"], two, want_two, names=("sst2", "trec"))
    reference_run("FastAPI + 2 transformers.pipelines (fp32)", two, want_two, names=("sst2", "trec"))
    base = results["FastAPI + transformers.pipeline (fp32)"]["requests_per_s"]
    print(f"lightft default / reference, one run: x{results['lightft serve (default: auto precision)']['requests_per_s'] / base:.2f}; "
          f"fp32 / reference: x{results['lightft serve --precision fp32']['requests_per_s'] / base:.2f}")
    base2 = results["FastAPI + 2 transformers.pipelines (fp32)"]
    shared = results["lightft serve, one shared base (fp32)"]
    print(f"two runs, fp32: throughput x{shared['requests_per_s'] / base2['requests_per_s']:.2f}, "
          f"resident memory x{shared['rss_mb'] / base2['rss_mb']:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
