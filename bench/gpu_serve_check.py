"""`lightft serve` on whatever device the runs load on (a GPU on the device machine): start the real CLI server in a
subprocess, send concurrent requests over HTTP, and check every answer against `lightft.load(run).predict` in this
process on the same device. Prints requests/s, the largest probability difference and the label agreement.

    PYTHONPATH=src python bench/gpu_serve_check.py NAME=RUN [NAME=RUN ...] [--requests 400 --clients 16]

Used by bench/gpu_run12.sh on runs trained there by the CLI; runs here on CPU as well.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

TEXTS = ["Who wrote Hamlet ?", "How many miles is it to Boston ?", "What is the capital of France ?",
         "Why is the sky blue ?", "When did World War II end ?", "What does NASA stand for ?",
         "Who invented the telephone ?", "How far is the moon from the earth ?"]


def start(runs: list[str], extra: list[str]) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lightft", "serve", *runs, "--port", "0", "--quiet", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in proc.stdout:
        print("  server:", line.rstrip(), flush=True)
        if line.startswith("serving "):
            return proc, line.split(" at ")[1].split(": ")[0]
    raise SystemExit(f"the server did not start (exit {proc.wait(30)})")


def post(url: str, texts: list[str], model: str) -> dict:
    request = urllib.request.Request(url + "/predict", data=json.dumps({"texts": texts, "model": model}).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as r:
        return json.loads(r.read())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+", metavar="NAME=RUN")
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--precision", default=None, help="Passed to serve and to lightft.load (default: the run's).")
    args = p.parse_args()

    import lightft

    names = [r.split("=", 1)[0] for r in args.runs]
    extra = ["--precision", args.precision] if args.precision else []
    started = time.perf_counter()
    proc, url = start(args.runs, extra)
    print(f"server up in {time.perf_counter() - started:.1f} s at {url}", flush=True)
    try:
        with urllib.request.urlopen(url + "/models", timeout=30) as r:
            for m in json.loads(r.read())["models"]:
                print("  model:", json.dumps(m), flush=True)
        jobs = [(names[i % len(names)], [TEXTS[(i + k) % len(TEXTS)] for k in range(1 + i % 3)])
                for i in range(args.requests)]
        for name in names:  # warm-up
            post(url, TEXTS[:2], name)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            answers = list(pool.map(lambda job: post(url, job[1], job[0]), jobs))
        seconds = time.perf_counter() - t0
        print(f"{args.requests} requests from {args.clients} clients in {seconds:.2f} s: "
              f"{args.requests / seconds:.1f} requests/s", flush=True)
        with urllib.request.urlopen(url + "/stats", timeout=30) as r:
            print("  stats:", r.read().decode(), flush=True)
        for run, name in zip(args.runs, names):
            predictor = lightft.load(run.split("=", 1)[1], precision=args.precision)
            want = dict(zip(TEXTS, predictor.predict(TEXTS)))
            same = total = 0
            worst = 0.0
            for (job_name, texts), answer in zip(jobs, answers):
                if job_name != name:
                    continue
                for text, got in zip(texts, answer["predictions"]):
                    ref = want[text]
                    total += 1
                    same += got["label"] == ref["label"]
                    worst = max(worst, max(abs(got["probabilities"][k] - ref["probabilities"][k])
                                           for k in ref["probabilities"]))
            print(f"{name}: {predictor.device} {predictor.precision}, {same}/{total} labels agree with "
                  f"lightft.load().predict, largest probability difference {worst:.2e}", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        tail = proc.communicate(timeout=60)[0]
        print("  server:", tail.strip().replace("\n", " | "), f"(exit {proc.returncode})", flush=True)


if __name__ == "__main__":
    main()
