"""`lightft serve` as a user runs it: a real uvicorn server in a subprocess, stopped by SIGTERM or Ctrl-C; bad input
is one line before anything is served."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from lightft.cli import main

pytest.importorskip("uvicorn")


def start(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lightft", "serve", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in proc.stdout:  # the run lines, then "serving ... at http://HOST:PORT: ..."
        lines.append(line)
        if line.startswith("serving "):
            return proc, line.split(" at ")[1].split(": ")[0], lines
    proc.wait(30)
    raise AssertionError(f"the server did not start: {''.join(lines)} {proc.stderr.read()}")


def post(url, body):
    request = urllib.request.Request(url + "/predict", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_over_http_and_stops_cleanly(served_runs, stop):
    apart = ["--no-share-base"] if stop == signal.SIGINT else []
    proc, url, lines = start(f"sentiment={served_runs['lora']}", served_runs["dora"], "--port", 0, "--quiet",
                             "--precision", "fp32", *apart)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert "sentiment: lora run" in lines[0] and ("base model shared with dora" in lines[0]) == (not apart)
        status, body = post(url, {"texts": ["good film", "dull plot"], "model": "sentiment"})
        assert status == 200 and body["model"] == "sentiment" and len(body["predictions"]) == 2
        import lightft

        want = lightft.load(served_runs["lora"], precision="fp32").predict(["good film", "dull plot"])
        assert [p["label"] for p in body["predictions"]] == [w["label"] for w in want]
        status, body = post(url, {"texts": ["x"], "model": "nope"})
        assert status == 404 and "no run named 'nope'" in body["error"]
        with urllib.request.urlopen(url + "/models", timeout=30) as r:
            shared = {m["name"]: m["shares_base_with"] for m in json.loads(r.read())["models"]}
        assert shared == ({"sentiment": ["dora"], "dora": ["sentiment"]} if stop == signal.SIGTERM
                          else {"sentiment": [], "dora": []})
    finally:
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "server stopped" in out and "Traceback" not in err


def test_a_taken_port_and_a_missing_run_are_one_line_each(served_runs, tmp_path, capsys):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(SystemExit) as exit_:
            main(["serve", str(served_runs["lora"]), "--port", str(port)])
    finally:
        taken.close()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot serve on 127.0.0.1:{port}: Address already in use; something else is "
                          "serving there: pass another --port (0 picks a free one)") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_:
        main(["serve", str(tmp_path / "nowhere"), "--port", "0"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: ") and "nowhere" in err and err.count("\n") == 1
    for bad, message in ((["--port", "70000"], "--port must be a whole number from 0 to 65535"),
                         (["--max-wait-ms", "-5"], "--max-wait-ms must be a number of milliseconds from 0 to 1000"),
                         ([f"a={served_runs['lora']}", f"a={served_runs['dora']}"], "two runs are named 'a'")):
        with pytest.raises(SystemExit) as exit_:
            main(["serve", str(served_runs["lora"]), *bad])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and err.count("\n") == 1, err
