"""The encrypted scoring service (server side): FastAPI app, runner and child-process helper.

The service holds the model weights and an evaluation context per session; it never holds a
secret key (a context that carries one is refused) and never logs payloads.

API (version 1):

* ``GET  /v1/health`` — liveness plus model name/version.
* ``GET  /v1/model`` — feature order, slot layout, modes and limits (no weights).
* ``POST /v1/sessions`` — JSON ``{"context": base64}``: register a public evaluation context
  once; answers ``{"session_id", "params", "modes"}``. Later requests carry only ciphertexts.
* ``DELETE /v1/sessions/{id}``.
* ``POST /v1/score?mode=logit|probability`` — header ``X-Session-Id``, body: one serialised
  CKKS vector (16 slots, standardised features zero-padded); answers the encrypted result
  (``application/octet-stream``) with ``X-Request-Id`` and ``X-Server-Ms`` headers.
* ``POST /v1/score/batch?mode=…`` — body: frames (see ``privacy.ckks.pack_frames``), one
  ciphertext per feature with one customer per slot (feature-major); answers one ciphertext
  holding every customer's result.

Every error is JSON ``{"error": {"code", "message"}}`` with a 4xx status.

``python -m privacy.service`` runs it; :mod:`privacy.service_process` starts that as a child
process (without importing FastAPI, so the commands that only launch it stay light).
"""

import argparse
import base64
import binascii
import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.environment import private_umask
from app.core.settings import get_settings
from models.scoring import ScoringModel, load_artifact
from privacy import ckks
from privacy.service_process import ServiceProcess, start_in_background, wait_healthy

# Re-exported: the child-process helpers used to live here (they import no FastAPI; use
# privacy.service_process where start-up time matters).
__all__ = ["ApiError", "EncryptedEvaluator", "ServiceProcess", "Session", "SessionStore", "create_app", "main", "run",
           "start_in_background", "wait_healthy"]

MAX_CONTEXT_BYTES = 8 * 1024 * 1024  # base64 JSON of a public context (≈2 MB in practice)
MAX_SINGLE_BYTES = 512 * 1024  # one 16-slot ciphertext is ≈235 KB
MAX_BATCH_BYTES = 16 * 1024 * 1024  # 13 feature ciphertexts ≈ 3 MB
MAX_SESSIONS = 256
SESSION_TTL_S = 3600.0
ALLOWED_DEGREES = {4096, 8192, 16384}


class ApiError(Exception):
    """An expected request failure, turned into a JSON 4xx answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Session:
    """One registered evaluation context."""

    context: Any
    params: dict[str, Any]
    modes: list[str]
    has_galois: bool
    created: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)


class SessionStore:
    """Bounded LRU of sessions with an idle TTL (contexts are megabytes: never unbounded)."""

    def __init__(self, max_sessions: int = MAX_SESSIONS, ttl_s: float = SESSION_TTL_S) -> None:
        self._items: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self.max_sessions, self.ttl_s = max_sessions, ttl_s

    def add(self, session: Session) -> str:
        sid = uuid.uuid4().hex
        with self._lock:
            self._items[sid] = session
            while len(self._items) > self.max_sessions:
                self._items.popitem(last=False)
        return sid

    def get(self, sid: str | None) -> Session:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, s in self._items.items() if now - s.last_used > self.ttl_s]:
                del self._items[key]
            s = self._items.get(sid or "")
            if s is None:
                raise ApiError(404, "unknown_session", "unknown or expired session; register the context again")
            s.last_used = now
            self._items.move_to_end(sid)
            return s

    def delete(self, sid: str) -> bool:
        with self._lock:
            return self._items.pop(sid, None) is not None

    def __len__(self) -> int:
        return len(self._items)


class EncryptedEvaluator:
    """The server side of a :class:`models.scoring.ScoringModel`: its weights and bias applied to ciphertexts."""

    def __init__(self, model: ScoringModel) -> None:
        self.name, self.version = model.name, model.version
        self.features: list[str] = list(model.features)
        w = np.asarray(model.weights, dtype=float)
        if len(w) != len(self.features) or len(w) > ckks.SLOTS_SINGLE:
            raise ValueError("artifact weights do not match its feature list")
        if not np.any(w):
            raise ValueError("artifact has no non-zero weight")
        self.weights = w
        self.padded = np.zeros(ckks.SLOTS_SINGLE)
        self.padded[: len(w)] = w
        self.bias = float(model.bias)
        self.threshold = float(model.threshold)
        # Probability mode needs a bounded score: the bank clips the standardised features to the
        # training box (bank.feature_range), so z lies in score_range and the polynomial is fitted
        # there. An artifact without the box, or a fit that could flip a decision, gets no such mode.
        box = model.feature_range
        self.score_range: tuple[float, float] | None = None
        self.poly: tuple[float, float, float, float] | None = None
        if box is not None and self.threshold == 0.5:
            lo, hi = ckks.linear_score_range(w, self.bias, box)
            lo, hi = min(lo, -1.0), max(hi, 1.0)  # the range must straddle the threshold
            poly = ckks.scoring_polynomial(lo, hi)
            if ckks.decision_safe(poly, lo, hi):
                self.score_range, self.poly = (lo, hi), poly

    def eval_single(self, vec: Any, mode: str) -> Any:
        """w·x + b on one replicated 16-slot vector (rotation sum), then the optional polynomial."""
        out = vec.dot(self.padded.tolist())
        out.add_(self.bias)
        return self.poly_sigmoid(out) if mode == "probability" else out

    def poly_sigmoid(self, z: Any) -> Any:
        """a0 + a1·z + z²·(a2 + a3·z) under encryption in two levels (z² and a3·z share one).

        (TenSEAL's polyval encrypts its constant term, which a public symmetric context cannot do.)
        """
        if self.poly is None:
            raise ApiError(400, "mode_unavailable", "this model has no bounded score range for probability mode")
        a0, a1, a2, a3 = self.poly
        inner = z.mul(a3)
        inner.add_(a2)
        inner.mul_(z.square())
        out = z.mul(a1)
        out.add_(inner)
        out.add_(a0)
        return out

    def eval_batch(self, columns: list[Any], mode: str) -> Any:
        """Σ_j w_j·column_j + b over feature-major ciphertexts (no rotations needed)."""
        acc = None
        for w, col in zip(self.weights, columns):
            if w == 0.0:  # an unused feature (e.g. pinned by the fairness fit); SEAL refuses ×0 ("transparent")
                continue
            term = col * float(w)
            acc = term if acc is None else acc.add_(term)
        acc.add_(self.bias)
        return self.poly_sigmoid(acc) if mode == "probability" else acc


def _load_context(raw: bytes) -> Session:
    """Validate and load a public evaluation context; ApiError (4xx) on anything wrong."""
    import tenseal as ts  # heavy (SEAL): deferred so commands that import this module stay light

    try:
        proto = ckks.parse_context_proto(raw)
    except ValueError:
        raise ApiError(400, "malformed_context", "the context is not a serialised TenSEAL context") from None
    if proto.HasField("private_context") and proto.private_context.secret_key:
        raise ApiError(400, "secret_key_present",
                       "the context carries a secret key; send only the public evaluation context")
    try:
        ctx = ts.context_from(raw, n_threads=1)
    except Exception:  # noqa: BLE001 - SEAL reports bad parameters/keys with assorted errors
        raise ApiError(400, "malformed_context",
                       "the context could not be loaded (bad parameters or keys below 128-bit security)") from None
    if not ctx.is_public() or ctx.has_secret_key():
        raise ApiError(400, "secret_key_present", "the context must be public (no secret key)")
    try:
        params = ckks.describe_context(ctx)
    except Exception:  # noqa: BLE001
        raise ApiError(400, "malformed_context", "the context is not a CKKS context") from None
    if params["poly_modulus_degree"] not in ALLOWED_DEGREES:
        raise ApiError(400, "unsupported_params", f"poly modulus degree must be one of {sorted(ALLOWED_DEGREES)}")
    modes = [m for m, d in ckks.MODE_DEPTH.items() if params["depth"] >= d
             and (m == "logit" or ctx.has_relin_keys())]
    if not modes:
        raise ApiError(400, "insufficient_depth", "the context has no multiplicative level left for w·x + b")
    return Session(context=ctx, params=params, modes=modes, has_galois=ctx.has_galois_keys())


async def _read_body(request: Any, limit: int) -> bytes:
    """Read the request body, refusing (413) anything over ``limit`` bytes before buffering it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, "too_large", f"request body over the {limit} byte limit")
        except ValueError:
            raise ApiError(400, "bad_length", "invalid Content-Length") from None
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(413, "too_large", f"request body over the {limit} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _load_vector(session: Session, blob: bytes) -> Any:
    import tenseal as ts  # heavy (SEAL): see _load_context

    if not blob:
        raise ApiError(400, "empty_body", "the request body must be a serialised CKKS vector")
    try:
        return ts.ckks_vector_from(session.context, blob)
    except Exception:  # noqa: BLE001 - TenSEAL raises ValueError/RuntimeError/TypeError variants
        raise ApiError(400, "bad_ciphertext",
                       "the ciphertext is malformed or was not made with this session's context") from None


# --------------------------------------------------------------------------------------
# errors: every one is JSON {"error": {"code", "message"}}
# --------------------------------------------------------------------------------------
def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return _error(exc.status, exc.code, exc.message)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    # Only the locations and kinds of problems — never the submitted values.
    where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('type')}" for e in exc.errors())
    return _error(422, "invalid_request", f"malformed request ({where})")


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return _error(exc.status_code, "http_error", str(exc.detail))


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - last resort
    return _error(500, "internal", f"internal error ({type(exc).__name__})")


# --------------------------------------------------------------------------------------
# request helpers and the encrypted work (run in the thread pool)
# --------------------------------------------------------------------------------------
def _mode(session: Session, mode: str, model: EncryptedEvaluator) -> str:
    if mode not in ckks.MODE_DEPTH:
        raise ApiError(422, "invalid_mode", f"mode must be one of {list(ckks.MODE_DEPTH)}")
    if mode == "probability" and model.poly is None:
        raise ApiError(400, "mode_unavailable", "this model has no bounded score range for probability mode")
    if mode not in session.modes:
        raise ApiError(400, "insufficient_depth", f"this session's context cannot evaluate mode {mode!r}")
    return mode


def _request_id(request: Request) -> str:
    """The caller's X-Request-Id if it is a plain token, else a fresh one (never echo junk)."""
    rid = request.headers.get("x-request-id", "")
    return rid if 0 < len(rid) <= 64 and rid.replace("-", "").isalnum() and rid.isascii() else uuid.uuid4().hex


def _context_from_json(body: bytes) -> bytes:
    """The raw context bytes of a ``{"context": "<base64>"}`` registration body."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("context"), str):
        raise ApiError(422, "invalid_request", 'expected a JSON object {"context": "<base64>"}')
    try:
        return base64.b64decode(payload["context"], validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "malformed_context", "context is not valid base64") from None


def _evaluate_single(model: EncryptedEvaluator, session: Session, body: bytes, mode: str) -> Any:
    vec = _load_vector(session, body)
    if vec.size() != ckks.SLOTS_SINGLE:
        raise ApiError(422, "wrong_size", f"expected a {ckks.SLOTS_SINGLE}-slot vector, got {vec.size()}")
    try:
        return model.eval_single(vec, mode)
    except Exception:  # noqa: BLE001 - e.g. scale/level mismatch from a foreign ciphertext
        raise ApiError(400, "bad_ciphertext", "the ciphertext cannot be evaluated with this context") from None


def _evaluate_batch(model: EncryptedEvaluator, session: Session, body: bytes, mode: str) -> Any:
    try:
        frames = ckks.unpack_frames(body)
    except ValueError as exc:
        raise ApiError(400, "bad_frames", str(exc)) from None
    if len(frames) != len(model.features):
        raise ApiError(422, "wrong_size", f"expected {len(model.features)} feature ciphertexts, got {len(frames)}")
    cols = [_load_vector(session, f) for f in frames]
    if len({c.size() for c in cols}) != 1:
        raise ApiError(422, "wrong_size", "all feature ciphertexts must hold the same number of customers")
    try:
        return model.eval_batch(cols, mode)
    except Exception:  # noqa: BLE001
        raise ApiError(400, "bad_ciphertext", "the ciphertexts cannot be evaluated with this context") from None


# --------------------------------------------------------------------------------------
# routes
# --------------------------------------------------------------------------------------
class _Routes:
    """The API's route handlers, bound to one model and one session store."""

    def __init__(self, model: EncryptedEvaluator, sessions: SessionStore) -> None:
        self.model, self.sessions = model, sessions

    def install(self, app: FastAPI) -> None:
        app.add_api_route("/v1/health", self.health, methods=["GET"])
        app.add_api_route("/v1/model", self.model_info, methods=["GET"])
        app.add_api_route("/v1/sessions", self.register, methods=["POST"])
        app.add_api_route("/v1/sessions/{sid}", self.unregister, methods=["DELETE"])
        app.add_api_route("/v1/score", self.score, methods=["POST"])
        app.add_api_route("/v1/score/batch", self.score_batch, methods=["POST"])

    async def health(self) -> dict[str, Any]:
        model = self.model
        return {"status": "ok", "model": model.name, "version": model.version, "sessions": len(self.sessions)}

    async def model_info(self) -> dict[str, Any]:
        model = self.model
        return {"name": model.name, "version": model.version, "features": model.features,
                "slots": ckks.SLOTS_SINGLE, "threshold": model.threshold, "modes": list(ckks.MODE_DEPTH),
                "sigmoid_polynomial": None if model.poly is None else {
                    # Rounded: the range is a function of the weights (coefficients are not published).
                    "degree": 3, "interval": [round(v, 1) for v in model.score_range],
                    "max_abs_error": round(ckks.poly_error(model.poly, *model.score_range), 5),
                    "inputs_clipped_to": "bank.feature_range (standardised training box)"},
                "limits": {"context_bytes": MAX_CONTEXT_BYTES, "single_bytes": MAX_SINGLE_BYTES,
                           "batch_bytes": MAX_BATCH_BYTES}}

    async def register(self, request: Request) -> JSONResponse:
        raw = _context_from_json(await _read_body(request, MAX_CONTEXT_BYTES))
        session = await run_in_threadpool(_load_context, raw)
        sid = self.sessions.add(session)
        return JSONResponse({"session_id": sid, "params": session.params, "modes": session.modes,
                             "ttl_s": self.sessions.ttl_s}, status_code=201)

    async def unregister(self, sid: str) -> dict[str, Any]:
        if not self.sessions.delete(sid):
            raise ApiError(404, "unknown_session", "unknown or expired session")
        return {"deleted": sid}

    async def score(self, request: Request, mode: str = "logit") -> Response:
        session = self.sessions.get(request.headers.get("x-session-id"))
        mode = _mode(session, mode, self.model)
        if not session.has_galois:
            raise ApiError(400, "missing_galois_keys", "single scoring needs the rotation keys in the context")
        body = await _read_body(request, MAX_SINGLE_BYTES)
        started = time.perf_counter()
        result = await run_in_threadpool(_evaluate_single, self.model, session, body, mode)
        return self._answer(result, started, _request_id(request))

    async def score_batch(self, request: Request, mode: str = "logit") -> Response:
        session = self.sessions.get(request.headers.get("x-session-id"))
        mode = _mode(session, mode, self.model)
        body = await _read_body(request, MAX_BATCH_BYTES)
        started = time.perf_counter()
        result = await run_in_threadpool(_evaluate_batch, self.model, session, body, mode)
        return self._answer(result, started, _request_id(request))

    def _answer(self, result: Any, started: float, request_id: str) -> Response:
        blob = result.serialize()
        ms = (time.perf_counter() - started) * 1000
        return Response(blob, media_type="application/octet-stream",
                        headers={"X-Request-Id": request_id, "X-Server-Ms": f"{ms:.3f}",
                                 "X-Model-Version": self.model.version})


def create_app(artifact: ScoringModel | None = None, settings: Any = None) -> FastAPI:
    """Build the FastAPI application around the server side of ``artifact`` (default: the model in use)."""
    model = EncryptedEvaluator(artifact or load_artifact(settings))
    sessions = SessionStore()
    app = FastAPI(title="Sahayak encrypted scoring", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/v1/openapi.json")
    app.state.model, app.state.sessions = model, sessions
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    _Routes(model, sessions).install(app)
    return app


def run(host: str | None = None, port: int | None = None, settings: Any = None, log_level: str = "warning") -> None:
    """Serve the app with uvicorn in this process (blocks). Binds to loopback by default."""
    settings = settings or get_settings()
    uvicorn.run(create_app(settings=settings), host=host or settings.scoring_host,
                port=port or settings.scoring_port, log_level=log_level, access_log=False,
                limit_concurrency=64, timeout_keep_alive=30)


def main(argv: list[str] | None = None) -> None:
    """``python -m privacy.service``: the scoring service process (files it writes are owner-only)."""
    private_umask()
    parser = argparse.ArgumentParser(description="Sahayak encrypted scoring service")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    run(args.host, args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
