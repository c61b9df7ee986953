"""The HTTP API through FastAPI's TestClient: answers equal lightft.load's, and each bad request gets its status
and a one-line {"error"}."""

import sys
import threading

import numpy as np
import pytest

import lightft
from lightft.errors import LightftError
from lightft.serving.app import create_app
from tests.serving.conftest import TEXTS

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(scope="module")
def client(served_runs):
    app = create_app({k: served_runs[k] for k in ("lora", "dora", "full")}, precision="fp32", max_request_texts=8)
    with TestClient(app) as c:
        yield c


def test_predict_answers_what_load_predicts(client, served_runs):
    for name in ("lora", "dora", "full", "lora"):
        r = client.post("/predict", json={"texts": TEXTS, "model": name})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == name
        want = lightft.load(served_runs[name], precision="fp32").predict(TEXTS)
        for g, w in zip(body["predictions"], want):
            assert g["label"] == w["label"] and set(g) == {"label", "score", "probabilities", "tokens"}
            np.testing.assert_allclose([g["probabilities"][k] for k in ("neg", "pos")],
                                       [w["probabilities"][k] for k in ("neg", "pos")], atol=1e-6)
    one = client.post("/predict", json={"texts": TEXTS[0], "model": "dora"}).json()["predictions"]  # a string
    assert len(one) == 1 and one[0]["label"] == lightft.load(served_runs["dora"], precision="fp32").predict(TEXTS[0])[0]["label"]


def test_models_health_and_stats(client, served_runs):
    models = client.get("/models").json()
    assert [m["name"] for m in models["models"]] == ["lora", "dora", "full"]
    lora = models["models"][0]
    assert lora["method"] == "lora" and lora["labels"] == ["neg", "pos"] and lora["shares_base_with"] == ["dora"]
    assert lora["run"] == str(served_runs["lora"]) and lora["max_length"] == 32 and lora["precision"] == "fp32"
    assert models["max_request_texts"] == 8 and models["parameter_bytes"] > 0
    assert client.get("/health").json() == {"status": "ok", "models": ["lora", "dora", "full"]}
    before = client.get("/stats").json()["texts"]
    client.post("/predict", json={"texts": TEXTS[:3], "model": "full"})
    assert client.get("/stats").json()["texts"] == before + 3


@pytest.mark.parametrize("body, status, message", [
    ({}, 422, 'bad request body (texts: Field required); send JSON like {"texts": ["a moving film"], "model": "NAME"}'),
    ({"texts": 5, "model": "lora"}, 422, "texts: should be a string or a list of strings, not a number"),
    ({"texts": ["ok", 2], "model": "lora"}, 422, "texts[1]: Input should be a valid string"),
    ({"texts": [], "model": "lora"}, 400, '"texts" is an empty list; send at least one text'),
    ({"texts": ["fine", "  "], "model": "lora"}, 400, "text 2 of 2 is empty; every text to predict needs content"),
    ({"texts": ["a"] * 9, "model": "lora"}, 413, "9 texts in one request, and this server takes at most 8 "
                                                  "(--max-request-texts); split them over several requests"),
    ({"texts": ["a"], "model": "lorra"}, 404, "no run named 'lorra' is served (did you mean 'lora'?); the served "
                                              "runs are 'lora', 'dora', 'full'"),
    ({"texts": ["a"]}, 400, "3 runs are served, so say which: add \"model\": one of 'lora', 'dora', 'full'"),
    ({"texts": ["a"], "modle": "dora"}, 422, 'modle: is not a field (did you mean \'model\'?); the fields are "texts" '
                                             'and "model"'),
])
def test_bad_requests_get_their_status_and_one_line(client, body, status, message):
    r = client.post("/predict", json=body)
    assert r.status_code == status
    error = r.json()["error"]
    assert message in error and "\n" not in error and set(r.json()) == {"error"}


def test_a_body_that_is_not_json(client):
    r = client.post("/predict", content=b"{texts: [", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "the body is not valid JSON" in r.json()["error"]
    r = client.post("/predict", content=b'{"texts": ["ok", "bad \\ud800"], "model": "lora"}',
                    headers={"content-type": "application/json"})  # JSON's escape of a lone surrogate
    assert r.status_code == 400 and r.json()["error"].startswith("text 2 of 2 has an unpaired surrogate at character 5")
    r = client.post("/predict", content=b'{"texts": ["a"], "model": "lora"}')  # curl -d without a content type
    assert r.status_code == 422 and r.json()["error"].startswith("the body was sent as no content type; send it as "
                                                                   "JSON, with the header Content-Type: application/json")
    for body in (b'{"texts": ["caf\xe9"], "model": "lora"}', b"[" * 5000 + b"]" * 5000):  # Latin-1; too deep
        r = client.post("/predict", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"].startswith("the body could not be read: it is not UTF-8, "
                                                                       "or its JSON is nested too deeply; send UTF-8")
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json() == {"error": "no endpoint GET /nowhere; this server has POST /predict, "
                                                          "GET /models, GET /health, GET /stats and GET /docs"}
    r = client.get("/predict")
    assert r.status_code == 405 and r.json()["error"].startswith("GET /predict is not allowed; this server has POST")


def test_a_failed_prediction_is_a_500_line_and_the_server_goes_on(served_runs, monkeypatch, caplog):
    app = create_app({"lora": served_runs["lora"]}, precision="fp32")
    pool = app.state.pool
    real = pool.predict
    calls = []

    def flaky(name, texts, **kwargs):
        calls.append(name)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")
        return real(name, texts, **kwargs)

    monkeypatch.setattr(pool, "predict", flaky)
    app.state.batcher.predict = lambda name, texts: pool.predict(name, texts, batch_size=64)
    with TestClient(app) as c:
        r = c.post("/predict", json={"texts": ["good"]})  # one run served: "model" may be left out
        assert r.status_code == 500 and r.json() == {"error": "prediction failed: RuntimeError: CUDA out of memory."}
        logged = [rec for rec in caplog.records if rec.name == "uvicorn.error"]  # the operator sees the traceback
        assert logged and "run 'lora' failed" in logged[0].getMessage() and logged[0].exc_info[0] is RuntimeError
        r = c.post("/predict", json={"texts": ["good"]})
        assert r.status_code == 200 and r.json()["model"] == "lora"


def test_concurrent_requests_share_micro_batches(served_runs):
    app = create_app({"lora": served_runs["lora"], "dora": served_runs["dora"]}, precision="fp32", max_wait_ms=50)
    with TestClient(app) as c:
        results = {}

        def ask(i):
            results[i] = c.post("/predict", json={"texts": [TEXTS[i % 5]], "model": "lora" if i % 2 else "dora"})

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = c.get("/stats").json()
    assert all(r.status_code == 200 for r in results.values())
    want = {name: lightft.load(served_runs[name], precision="fp32").predict(TEXTS) for name in ("lora", "dora")}
    for i, r in results.items():
        assert r.json()["predictions"][0]["label"] == want["lora" if i % 2 else "dora"][i % 5]["label"]
    assert stats["requests"] == 12 and stats["forwards"] < 12  # some requests shared a forward


def test_bad_options_and_a_missing_fastapi(served_runs, monkeypatch):
    with pytest.raises(LightftError, match=r"--max-batch-size must be a whole number >= 1, got 0; --max-wait-ms must "
                                           r"be a number of milliseconds from 0 to 1000, got -1"):
        create_app(served_runs["lora"], max_batch_size=0, max_wait_ms=-1)
    with pytest.raises(LightftError, match=r"unknown serve option\(s\) max_batchsize \(did you mean 'max_batch_size'\?\); "
                                           r"expected some of: host, port, quiet, device, precision"):
        lightft.serve(served_runs["lora"], max_batchsize=8)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(LightftError, match=r"lightft serve needs FastAPI and uvicorn, and fastapi is not installed; "
                                           r"install them with: pip install 'lightft\[serve\]'"):
        lightft.serve(served_runs["lora"])


def test_health_is_503_once_the_prediction_worker_is_gone(served_runs):
    app = create_app({"lora": served_runs["lora"]}, precision="fp32")
    with TestClient(app) as c:
        assert c.get("/health").json()["status"] == "ok"
        app.state.batcher.close()  # as if its thread had died
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "down"
        r = c.post("/predict", json={"texts": ["good"]})
        assert r.status_code == 503 and r.json() == {"error": "the micro-batcher is not running (not started yet, or closed)"}


class Client:
    def __init__(self, gone_after: int):
        self.polls, self.gone_after = 0, gone_after

    async def is_disconnected(self):
        self.polls += 1
        return self.polls > self.gone_after


def test_a_client_that_hangs_up_cancels_its_queued_request(monkeypatch):
    import asyncio
    from concurrent.futures import Future

    from lightft.serving import app as app_module

    monkeypatch.setattr(app_module, "DISCONNECT_POLL_S", 0.01)
    queued = Future()
    assert asyncio.run(app_module.answer(queued, Client(gone_after=2))) is None
    assert queued.cancelled()  # the worker's set_running_or_notify_cancel() skips it
    answered = Future()
    answered.set_result(["row"])
    assert asyncio.run(app_module.answer(answered, Client(gone_after=0))) == ["row"]  # an answer in hand is kept
