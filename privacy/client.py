"""The bank side of encrypted scoring: holds the secret key, encrypts, decrypts, explains.

``ScoringClient(settings=None).score(features) -> ScoreResult`` is the contract the
Loan_Enquiry handler and the CLI use. ``features`` may be the model's own features
(``models.scoring.dataset.FEATURES``) or the raw applicant inputs (``monthly_income``,
``existing_emis``, ``loan_amount``, ``tenure_months``, … plus optional
``annual_rate_pct``); missing raw inputs are filled with the population medians listed
in the model card and reported in ``ScoreResult.assumed``.

Per client: one secret key, one public evaluation context registered with the service
once (``POST /v1/sessions``); each score request then carries only one ciphertext.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from app.core.errors import SahayakError
from app.core.settings import get_settings
from models.scoring.dataset import derive_features
from models.scoring import ScoringModel, load_artifact
from privacy import ckks


class ScoringUnavailable(SahayakError):
    """The scoring service is down, too slow or answered with a server error."""


class ScoringRequestError(SahayakError):
    """The service refused a request (4xx): a bug on the bank side, not an outage."""


@dataclass
class ScoreResult:
    """One decrypted score with its explanation and provenance."""

    probability: float
    approved: bool
    factors: list[str]
    request_id: str
    timings: dict[str, float]  # encrypt_ms, server_ms, decrypt_ms, e2e_ms (plus network_ms)
    logit: float | None = None
    model_version: str = ""
    assumed: dict[str, float] = field(default_factory=dict)
    mode: str = "logit"
    clipped: list[str] = field(default_factory=list)  # probability mode: features brought into the training box


# Human phrasing of the factors we explain (sign-aware). Features whose published direction is
# not meaningful to a customer on its own (age, amount, tenure, the EMI split) are not cited.
_PHRASES: dict[str, tuple[str, str]] = {
    # feature: (helps, hurts)
    "foir": ("your total EMIs would stay a comfortable share of your income",
             "your total EMIs would take a large share of your monthly income"),
    "log_monthly_income": ("a healthy monthly income", "a monthly income that is low for this loan"),
    "credit_utilisation": ("low use of your credit limits", "high use of your credit-card limits"),
    "missed_payments_24m": ("no missed payments in the last two years", "missed payments in the last two years"),
    "credit_history_years": ("a long credit history", "a short credit history"),
    "recent_enquiries_6m": ("few recent credit applications", "several recent credit applications"),
    "employment_years": ("stable employment", "a short time in your current job"),
    "secured": ("the loan is backed by collateral", "the loan is unsecured"),
    "existing_emis_ratio": ("few existing EMIs", "your existing EMIs"),
}


def explain(z: dict[str, float], directions: dict[str, int], approved: bool, top: int = 3,
            exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The main factors behind a decision, from public effect directions only.

    Ranks features by how far the applicant sits from the population mean (standardised
    value) in the direction that pushed the decision; the weights' sizes are never used,
    so the explanation reveals nothing the model card does not already publish. Features in
    ``exclude`` (filled with population defaults, not the customer's own data) are never cited.
    """
    scored = []
    for name, (helps, hurts) in _PHRASES.items():
        d = directions.get(name, 0)
        if d == 0 or name not in z or name in exclude:
            continue
        push = d * z[name]  # > 0 pushes towards approval
        if approved and push > 0.25:
            scored.append((push, helps))
        elif not approved and push < -0.25:
            scored.append((-push, hurts))
    scored.sort(reverse=True)
    return [text for _, text in scored[:top]]


class ScoringClient:
    """Bank-side client of the encrypted scoring service (thread-safe)."""

    def __init__(self, settings: Any = None, base_url: str | None = None, preset: str = "logit",
                 timeout: float | None = None, artifact: ScoringModel | None = None) -> None:
        """``artifact``: the scoring model (default: the one in use, ``models.scoring.load_artifact``)."""
        self.settings = settings or get_settings()
        self.base_url = (base_url or self.settings.scoring_base_url).rstrip("/")
        self.timeout = timeout if timeout is not None else self.settings.scoring_timeout_s
        self.preset = preset
        bank = (artifact or load_artifact(self.settings)).bank_part()  # the client keeps only the bank part: no weights
        self.model_version = bank.version
        self.features: list[str] = list(bank.features)
        self.mean = np.asarray(bank.mean, dtype=float)
        self.std = np.asarray(bank.std, dtype=float)
        self.directions: dict[str, int] = dict(bank.directions)
        self.defaults: dict[str, float] = dict(bank.defaults)
        # Standardised training box: probability mode clips to it so the service's polynomial is only
        # ever evaluated on the score range it was fitted for (absent in artifacts written before it was added).
        box = bank.feature_range
        self.feature_range = np.asarray(box, dtype=float) if box is not None else None
        self.threshold = float(bank.threshold)
        self._keys: ckks.KeyPair | None = None
        self._session: str | None = None
        self._lock = threading.Lock()
        self._http: Any = None

    # -- plumbing -------------------------------------------------------------------------
    @property
    def keys(self) -> ckks.KeyPair:
        """The secret key and public context (generated on first use, kept for this client)."""
        if self._keys is None:
            self._keys = ckks.generate_keys(self.preset)
        return self._keys

    def _client(self) -> Any:
        if self._http is None:
            self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout, trust_env=False)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _post(self, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._client().post(path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ScoringUnavailable(f"the scoring service did not answer within {self.timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise ScoringUnavailable(f"the scoring service at {self.base_url} is unreachable") from exc
        if resp.status_code >= 500:
            raise ScoringUnavailable(f"the scoring service failed (HTTP {resp.status_code})")
        return resp

    @staticmethod
    def _error_text(resp: Any) -> str:
        try:
            err = resp.json()["error"]
            return f"{err['code']}: {err['message']}"
        except Exception:  # noqa: BLE001
            return f"HTTP {resp.status_code}"

    def register(self) -> str:
        """Send the public evaluation context once; returns the session id."""
        with self._lock:
            if self._session is None:
                ctx_b64 = base64.b64encode(self.keys.public_bytes).decode()
                resp = self._post("/v1/sessions", json={"context": ctx_b64})
                if resp.status_code != 201:
                    raise ScoringRequestError(f"context registration refused ({self._error_text(resp)})")
                self._session = resp.json()["session_id"]
            return self._session

    def _send(self, path: str, body: bytes, mode: str, request_id: str) -> Any:
        """POST a ciphertext body, re-registering once if the service forgot the session."""
        for attempt in range(2):
            sid = self.register()
            resp = self._post(path, content=body, params={"mode": mode},
                              headers={"X-Session-Id": sid, "X-Request-Id": request_id,
                                       "Content-Type": "application/octet-stream"})
            if resp.status_code == 404 and attempt == 0:  # service restarted: register again
                with self._lock:
                    self._session = None
                continue
            if resp.status_code != 200:
                raise ScoringRequestError(f"scoring request refused ({self._error_text(resp)})")
            return resp
        raise ScoringUnavailable("the scoring service keeps forgetting the session")  # pragma: no cover

    # -- features ---------------------------------------------------------------------------
    def prepare(self, features: dict[str, float]) -> tuple[np.ndarray, dict[str, float]]:
        """Model-order feature vector (unstandardised) and the defaults that were assumed."""
        assumed: dict[str, float] = {}
        if all(f in features for f in self.features):
            values = {f: float(features[f]) for f in self.features}
        else:
            missing = [k for k in ("monthly_income", "loan_amount", "tenure_months") if k not in features]
            if missing:
                raise SahayakError(f"scoring needs {', '.join(missing)} (or all model features)")
            raw = {k: float(v) for k, v in features.items()}
            for k, v in self.defaults.items():
                if k not in raw:
                    raw[k] = v
                    assumed[k] = v
            raw.setdefault("secured", 0.0)
            values = derive_features(raw, float(features.get("annual_rate_pct", 12.0)))
        x = np.array([values[f] for f in self.features], dtype=float)
        if not np.all(np.isfinite(x)):
            raise SahayakError("scoring features must be finite numbers")
        return x, assumed

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def clip_to_box(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standardised features clipped to the training box, and a mask of what was clipped.

        Clipping moves an extreme applicant to the nearest point the model was fitted on, in the
        same direction, so the polynomial sigmoid never sees a score outside its fitted range.
        """
        if self.feature_range is None:
            raise SahayakError("this scoring model has no feature range; probability mode needs a retrained model")
        lo, hi = self.feature_range[:, 0], self.feature_range[:, 1]
        clipped = np.clip(z, lo, hi)
        return clipped, clipped != z

    # -- scoring ----------------------------------------------------------------------------
    def score(self, features: dict[str, float], mode: str = "logit") -> ScoreResult:
        """Encrypt, score remotely, decrypt and explain one applicant."""
        import tenseal as ts  # heavy (SEAL): deferred so importing the client (handlers, CLI) stays light

        t_setup = time.perf_counter()
        fresh = self._session is None
        self.register()  # key generation and context upload happen once per client, not per request
        setup_ms = (time.perf_counter() - t_setup) * 1e3 if fresh else 0.0
        t0 = time.perf_counter()
        x, assumed = self.prepare(features)
        z = self.standardise(x)
        clipped: list[str] = []
        if mode == "probability":
            z, mask = self.clip_to_box(z)
            clipped = [f for f, m in zip(self.features, mask) if m]
        padded = np.zeros(ckks.SLOTS_SINGLE)
        padded[: len(z)] = z
        body = ts.ckks_vector(self.keys.private, padded.tolist()).serialize()
        t1 = time.perf_counter()
        request_id = uuid.uuid4().hex
        resp = self._send("/v1/score", body, mode, request_id)
        t2 = time.perf_counter()
        value = float(ts.ckks_vector_from(self.keys.private, resp.content).decrypt()[0])
        t3 = time.perf_counter()
        if mode == "logit":
            logit, prob = value, float(ckks.sigmoid(value))
        else:
            logit, prob = None, float(np.clip(value, 0.0, 1.0))
        approved = prob >= self.threshold
        server_ms = float(resp.headers.get("x-server-ms", "nan"))
        timings = {"encrypt_ms": (t1 - t0) * 1e3, "server_ms": server_ms, "decrypt_ms": (t3 - t2) * 1e3,
                   "network_ms": (t2 - t1) * 1e3 - server_ms, "e2e_ms": (t3 - t0) * 1e3,
                   "request_bytes": float(len(body)), "response_bytes": float(len(resp.content)),
                   "session_setup_ms": setup_ms}
        zd = {f: float(v) for f, v in zip(self.features, z)}
        # Raw inputs that were defaulted map to these features; never explain with assumptions.
        derived = {"existing_emis": "existing_emis_ratio"}
        exclude = {derived.get(k, k) for k in assumed}
        return ScoreResult(probability=prob, approved=approved,
                           factors=explain(zd, self.directions, approved, exclude=exclude),
                           request_id=resp.headers.get("x-request-id", request_id), timings=timings,
                           logit=logit, model_version=resp.headers.get("x-model-version", self.model_version),
                           assumed=assumed, mode=mode, clipped=clipped)

    def score_matrix(self, X: np.ndarray, mode: str = "logit", workers: int = 2) -> tuple[np.ndarray, dict[str, float]]:
        """Batched scoring of raw model-order rows ``X`` (n × features), feature-major packing.

        Each feature becomes one ciphertext with one customer per slot, so the service needs
        no rotations; chunks of ``slot_count`` customers go in one request each. ``workers``
        chunks are in flight at once, so encrypting the next chunk overlaps with the service
        evaluating the previous one. Returns probabilities and summed timings/bytes.
        """
        import tenseal as ts  # heavy (SEAL): see score()

        Z = self.standardise(np.asarray(X, dtype=float))
        if mode == "probability":
            Z, _ = self.clip_to_box(Z)
        slots = self.keys.params.slot_count
        self.register()
        out = np.empty(len(Z))

        def one(start: int) -> dict[str, float]:
            t0 = time.perf_counter()
            chunk = Z[start:start + slots]
            body = ckks.pack_frames([ts.ckks_vector(self.keys.private, chunk[:, j].tolist()).serialize()
                                     for j in range(chunk.shape[1])])
            t1 = time.perf_counter()
            resp = self._send("/v1/score/batch", body, mode, uuid.uuid4().hex)
            t2 = time.perf_counter()
            vals = np.asarray(ts.ckks_vector_from(self.keys.private, resp.content).decrypt()[: len(chunk)])
            t3 = time.perf_counter()
            out[start:start + len(chunk)] = ckks.sigmoid(vals) if mode == "logit" else np.clip(vals, 0, 1)
            return {"encrypt_ms": (t1 - t0) * 1e3, "server_ms": float(resp.headers.get("x-server-ms", 0)),
                    "decrypt_ms": (t3 - t2) * 1e3, "e2e_ms": (t3 - t0) * 1e3, "request_bytes": float(len(body)),
                    "response_bytes": float(len(resp.content)), "requests": 1.0}

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            parts = list(pool.map(one, range(0, len(Z), slots)))
        tot = {k: sum(p[k] for p in parts) for k in parts[0]} if parts else {}
        return out, tot


_shared: dict[tuple[str, str], ScoringClient] = {}
_shared_lock = threading.Lock()


def get_client(settings: Any = None) -> ScoringClient:
    """A process-wide client per service URL (one key pair and one session, reused)."""
    settings = settings or get_settings()
    key = (settings.scoring_base_url, str(settings.models_dir))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = ScoringClient(settings)
        return _shared[key]
