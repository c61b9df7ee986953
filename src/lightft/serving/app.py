"""The HTTP server: a FastAPI app over a ModelPool and a MicroBatcher, run by uvicorn.

Endpoints (JSON): ``POST /predict`` ``{"texts": [...] or "one text", "model": NAME}`` (``model`` may be left out
when one run is served) → ``{"model", "predictions": [{"label", "score", "probabilities", "tokens"}]}``;
``GET /models`` (what each run is and which runs share a base model), ``GET /health``, ``GET /stats`` (requests,
texts, micro-batches); ``/docs`` is FastAPI's interactive page. Every error is ``{"error": "one line"}`` with its
status (400 bad texts, 404 unknown model, 413 too many texts, 422 malformed body, 500 a failed prediction).
"""

# No `from __future__ import annotations` here: FastAPI reads the request model from the annotation of a function
# defined inside create_app, which a string annotation would hide.
import asyncio
import inspect
import logging
import socket
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from lightft.errors import LightftError, did_you_mean, first_line
from lightft.predict import check_texts
from lightft.serving.batcher import MicroBatcher, WorkerStopped
from lightft.serving.pool import ModelPool, name_runs

EXAMPLE = '{"texts": ["a moving film"], "model": "NAME"}'
DISCONNECT_POLL_S = 0.1  # how often a waiting request checks that its client is still there
ENDPOINTS = "POST /predict, GET /models, GET /health, GET /stats and GET /docs"


def _fastapi():
    try:
        import fastapi
        import uvicorn  # noqa: F401 - checked here, used by run()
    except ImportError as exc:
        raise LightftError(f"lightft serve needs FastAPI and uvicorn, and {exc.name} is not installed; install them "
                           "with: pip install 'lightft[serve]'") from None
    return fastapi


def check_options(*, max_batch_size, max_wait_ms, max_request_texts) -> None:
    problems = []
    for flag, value in (("--max-batch-size", max_batch_size), ("--max-request-texts", max_request_texts)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{flag} must be a whole number >= 1, got {value!r}")
    if not isinstance(max_wait_ms, (int, float)) or isinstance(max_wait_ms, bool) or not 0 <= max_wait_ms <= 1000:
        problems.append(f"--max-wait-ms must be a number of milliseconds from 0 to 1000, got {max_wait_ms!r}")
    if problems:
        raise LightftError("; ".join(problems))


def create_app(runs, *, device=None, precision: str | None = None, base_model: str | Path | None = None,
               max_batch_size: int = 64, max_wait_ms: float = 2.0, max_request_texts: int = 1024,
               share_base: bool = True):
    """The FastAPI app serving ``runs`` (a run directory, a list of them, ``NAME=RUN`` strings or ``{name: run}``).

    Models load here, before anything is served; the micro-batcher's thread runs while the app does (its lifespan),
    so use the app under uvicorn or as ``with fastapi.testclient.TestClient(app)``."""
    fastapi = _fastapi()
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from pydantic import BaseModel, ConfigDict, Field

    check_options(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_request_texts=max_request_texts)
    pool = ModelPool(runs, device=device, precision=precision, base_model=base_model, share=share_base)
    batcher = MicroBatcher(partial(pool.predict, batch_size=max_batch_size), max_batch_size=max_batch_size,
                           max_wait_ms=max_wait_ms)
    names = pool.names()

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")  # {"texts": [...], "modle": "b"} must not answer with run a
        texts: list[str] | str = Field(description="The texts to label (one string is one text).")
        model: str | None = Field(None, description=f"The served run to predict with: one of {', '.join(names)} "
                                                    "(may be left out when one run is served).")

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, batcher.close)  # what is queued finishes

    from lightft import __version__

    app = fastapi.FastAPI(title="lightft", version=__version__, lifespan=lifespan,
                          description=f"Text classification with {len(names)} fine-tuned run(s): {', '.join(names)}.")
    app.state.pool, app.state.batcher = pool, batcher

    def error(status: int, message: str):
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def malformed(request, exc):
        kind = request.headers.get("content-type", "")
        if "json" not in kind:  # curl -d without -H: the body is never read as JSON
            return error(422, f"the body was sent as {kind or 'no content type'}; send it as JSON, with the header "
                              f"Content-Type: application/json, like {EXAMPLE}")
        return error(422, f"bad request body ({_describe(exc.errors())}); send JSON like {EXAMPLE}")

    @app.exception_handler(StarletteHTTPException)  # unknown paths and methods
    async def http_error(request, exc):
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            return error(404, f"no endpoint {where}; this server has {ENDPOINTS}")
        if exc.status_code == 400 and request.url.path == "/predict":  # starlette could not parse the body
            return error(400, f"the body could not be read: it is not UTF-8, or its JSON is nested too deeply; "
                              f"send UTF-8 JSON like {EXAMPLE}")
        if exc.status_code == 405:
            return error(405, f"{where} is not allowed; this server has {ENDPOINTS}")
        return error(exc.status_code, f"{where}: {exc.detail}")

    @app.get("/health")
    async def health():
        if not batcher.alive:  # a load balancer takes this server out of rotation
            return JSONResponse({"status": "down", "error": "the prediction worker is not running; restart the "
                                 "server", "models": names}, status_code=503)
        return {"status": "ok", "models": names}

    @app.get("/models")
    async def models():
        return {"models": [s.describe() for s in pool.served.values()], "max_batch_size": max_batch_size,
                "max_wait_ms": max_wait_ms, "max_request_texts": max_request_texts,
                "parameter_bytes": pool.parameter_bytes()}

    @app.get("/stats")
    async def stats():
        return batcher.stats.as_dict()

    @app.post("/predict")
    async def predict(body: PredictRequest, request: fastapi.Request):
        name = body.model
        if name is None:
            if len(names) > 1:
                return error(400, f"{len(names)} runs are served, so say which: add \"model\": one of "
                                  f"{', '.join(map(repr, names))}")
            name = names[0]
        elif name not in pool:
            return error(404, f"no run named {name!r} is served{did_you_mean(name, names)}; the served runs are "
                              f"{', '.join(map(repr, names))}")
        texts = [body.texts] if isinstance(body.texts, str) else body.texts
        if not texts:
            return error(400, f"\"texts\" is an empty list; send at least one text, e.g. {EXAMPLE}")
        if len(texts) > max_request_texts:
            return error(413, f"{len(texts):,} texts in one request, and this server takes at most "
                              f"{max_request_texts:,} (--max-request-texts); split them over several requests")
        try:
            check_texts(texts)
        except LightftError as exc:
            return error(400, str(exc))
        try:
            rows = await answer(batcher.submit(name, texts), request)
            if rows is None:  # nobody is listening; nginx's code for it, for the access log
                return error(499, "the client closed the connection before the answer")
        except asyncio.CancelledError:  # uvicorn's shutdown grace period ran out
            return error(503, "the server is shutting down; send the request again to a running server")
        except WorkerStopped as exc:
            return error(503, str(exc))
        except LightftError as exc:
            return error(400, str(exc))
        except Exception as exc:  # noqa: BLE001 - the client gets one line, the server's log the traceback
            logging.getLogger("uvicorn.error").error("POST /predict with run %r failed", name, exc_info=exc)
            return error(500, f"prediction failed: {type(exc).__name__}: {first_line(exc, 300)}")
        return {"model": name, "predictions": rows}

    return app


async def answer(future, request) -> list | None:
    """The micro-batcher's rows for ``future``, or None once the client has hung up: a request still queued is then
    cancelled, so the worker skips it (one already in a forward finishes and its rows are dropped). Starlette does
    not cancel a handler whose client left, so this asks every ``DISCONNECT_POLL_S``."""
    waiting = asyncio.wrap_future(future)
    while True:
        done, _ = await asyncio.wait({waiting}, timeout=DISCONNECT_POLL_S)
        if done:
            return waiting.result()
        if await request.is_disconnected():
            future.cancel()
            return None


def _describe(errors) -> str:
    """pydantic's validation errors as one clause: 'texts: Field required; texts[2]: Input should be a valid string'."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return "the body is not valid JSON"
    parts: list[str] = []
    for e in errors:
        where = ""
        for x in e.get("loc", ())[1:]:  # after "body"; union members ("list[str]", "str") are not places
            if isinstance(x, int):
                where += f"[{x}]"
            elif x in ("texts", "model") or not where:
                where += ("." if where else "") + str(x)
        message = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            message = f"is not a field{did_you_mean(where, ('texts', 'model'))}; the fields are \"texts\" and \"model\""
        if where == "texts" and e.get("type") in ("list_type", "string_type"):  # neither member of list[str] | str
            message = f"should be a string or a list of strings, not {_json_type(e.get('input'))}"
        part = f"{where + ': ' if where else ''}{message}"
        if part not in parts and not any(p.startswith(where + "[") for p in parts):
            parts.append(part)
    more = f" and {len(parts) - 3} more" if len(parts) > 3 else ""
    return "; ".join(parts[:3]) + more


def _json_type(value) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the models load, so a taken port is reported at once."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise LightftError(f"--port must be a whole number from 0 to 65535 (0: any free port), got {port!r}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise LightftError(f"--host {host} is not an address of this machine ({exc.strerror}); use 127.0.0.1 for "
                           "this machine only, or 0.0.0.0 for every network interface") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        taken = exc.errno in (98, 48, 10048)  # EADDRINUSE on Linux, macOS, Windows
        raise LightftError(f"cannot serve on {host}:{port}: {exc.strerror}; "
                           + ("something else is serving there: pass another --port (0 picks a free one)" if taken
                              else "pass another --host or --port")) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(app, sock: socket.socket, *, quiet: bool = False) -> None:
    """Serve ``app`` on ``sock`` until Ctrl-C or SIGTERM; in-flight requests finish first."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning" if quiet else "info", access_log=not quiet,
                            timeout_graceful_shutdown=30)
    uvicorn.Server(config).run(sockets=[sock])


def serve(runs, *, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False, **options) -> None:
    """``lightft serve`` from Python: serve ``runs`` over HTTP until interrupted (see :func:`create_app`)."""
    _fastapi()
    known = [k for k in inspect.signature(create_app).parameters if k != "runs"]
    unknown = sorted(set(options) - set(known))
    if unknown:  # one line, as lightft.train gives, rather than create_app's TypeError
        raise LightftError(f"unknown serve option(s) {', '.join(unknown)}{did_you_mean(unknown[0], known)}; expected "
                           f"some of: host, port, quiet, {', '.join(known)}")
    name_runs(runs)  # a bad name fails before the port is taken
    check_options(**{k: options.get(k, d) for k, d in (("max_batch_size", 64), ("max_wait_ms", 2.0),
                                                        ("max_request_texts", 1024))})
    sock = bind(host, port)
    try:
        run(create_app(runs, **options), sock, quiet=quiet)
    finally:
        sock.close()
