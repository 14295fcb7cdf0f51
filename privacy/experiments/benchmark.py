"""Encrypted-scoring benchmark: real HTTP on loopback, plaintext baseline in the same run.

Used by ``sahayak scoring bench`` and ``bench/scoring.py``. The report is one JSON object:
``single`` and ``batched`` latency/size/accuracy figures for the encrypted-logit protocol,
``probability_mode`` for the encrypted polynomial sigmoid, the plaintext baseline and the
overhead ratio, plus the top-level keys the project's bench summary reads.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np

from app.core.net import free_port
from models.scoring import ScoringModel, load_artifact
from privacy import ckks
from privacy.client import ScoringClient
from privacy.service_process import start_in_background


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if values else float("nan")


def _load_avg() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _single(client: ScoringClient, model: ScoringModel, rows: list[dict[str, float]],
            ref: np.ndarray) -> tuple[dict[str, Any], dict[str, list[float]], list[float]]:
    """Single customers, encrypted logit, exact sigmoid after decryption; and the plaintext baseline.

    Returns the ``single`` section, the per-request timings and the plaintext milliseconds."""
    n_single = len(rows)
    client.score(rows[0])  # warm-up (connection, code paths)
    timing: dict[str, list[float]] = {k: [] for k in ("encrypt_ms", "server_ms", "decrypt_ms", "e2e_ms",
                                                      "request_bytes", "response_bytes")}
    probs = []
    for row in rows:
        r = client.score(row)
        probs.append(r.probability)
        for k in timing:
            timing[k].append(r.timings[k])
    probs_a = np.asarray(probs)
    single_err = float(np.max(np.abs(probs_a - ref[:n_single])))
    single_agree = float(np.mean((probs_a >= model.threshold) == (ref[:n_single] >= model.threshold)))

    # Plaintext baseline: the same per-customer work without encryption or network.
    w, bias = np.asarray(model.weights), model.bias
    plain_ms = []
    for row in rows:
        t = time.perf_counter()
        x, _ = client.prepare(row)
        float(ckks.sigmoid(client.standardise(x) @ w + bias))
        plain_ms.append((time.perf_counter() - t) * 1e3)
    section = {
        "encrypt_ms_p50": _pct(timing["encrypt_ms"], 50), "encrypt_ms_p95": _pct(timing["encrypt_ms"], 95),
        "server_ms_p50": _pct(timing["server_ms"], 50), "server_ms_p95": _pct(timing["server_ms"], 95),
        "decrypt_ms_p50": _pct(timing["decrypt_ms"], 50), "decrypt_ms_p95": _pct(timing["decrypt_ms"], 95),
        "e2e_ms_p50": _pct(timing["e2e_ms"], 50), "e2e_ms_p95": _pct(timing["e2e_ms"], 95),
        "request_bytes": int(np.median(timing["request_bytes"])),
        "response_bytes": int(np.median(timing["response_bytes"])),
        "n": n_single, "max_abs_error": single_err, "decision_agreement": single_agree,
    }
    return section, timing, plain_ms


def _batched(client: ScoringClient, model: ScoringModel, X: np.ndarray, ref: np.ndarray,
             batch_chunks: int) -> dict[str, Any]:
    """Feature-major batches: the held-out set repeated to fill ``batch_chunks`` full ciphertexts
    (a steadier rate), against plaintext scoring of the same rows."""
    slots = client.keys.params.slot_count
    XB = np.resize(X, (slots * batch_chunks, X.shape[1]))
    refB = np.resize(ref, len(XB))
    t = time.perf_counter()
    bprobs, btot = client.score_matrix(XB)
    batch_wall = time.perf_counter() - t
    t = time.perf_counter()
    model.predict_proba(XB)
    plain_batch_s = time.perf_counter() - t
    return {
        "batch_size": client.keys.params.slot_count, "customers": int(len(XB)),
        "requests": int(btot["requests"]), "in_flight": 2,
        "scores_per_s": round(len(XB) / batch_wall, 1),
        "encrypt_ms_per_request": round(btot["encrypt_ms"] / btot["requests"], 3),
        "server_ms_per_request": round(btot["server_ms"] / btot["requests"], 3),
        "decrypt_ms_per_request": round(btot["decrypt_ms"] / btot["requests"], 3),
        "e2e_ms_per_request": round(btot["e2e_ms"] / btot["requests"], 3),
        "request_bytes": int(btot["request_bytes"] / btot["requests"]),
        "response_bytes": int(btot["response_bytes"] / btot["requests"]),
        "max_abs_error": float(np.max(np.abs(bprobs - refB))),
        "decision_agreement": float(np.mean((bprobs >= model.threshold) == (refB >= model.threshold))),
        "plaintext_scores_per_s": round(len(XB) / plain_batch_s, 1),
    }


def _probability_mode(pclient: ScoringClient, model: ScoringModel, X: np.ndarray, ref: np.ndarray,
                      rows: list[dict[str, float]], n_prob: int) -> dict[str, Any]:
    """The polynomial sigmoid under encryption, single and batched, against the exact sigmoid."""
    pclient.score(rows[0], mode="probability")
    pe2e, pserver, pprobs = [], [], []
    for row in rows[:n_prob]:
        r = pclient.score(row, mode="probability")
        pe2e.append(r.timings["e2e_ms"])
        pserver.append(r.timings["server_ms"])
        pprobs.append(r.probability)
    pprobs_a = np.asarray(pprobs)
    pref = ref[: len(pprobs)]
    w, bias = np.asarray(model.weights), model.bias
    Z, _ = pclient.clip_to_box(model.standardise(X[: len(pprobs)]))
    lo, hi = ckks.linear_score_range(w, bias, model.feature_range)
    poly = ckks.scoring_polynomial(min(lo, -1.0), max(hi, 1.0))
    poly_plain = np.clip(np.polynomial.polynomial.polyval(Z @ w + bias, poly), 0, 1)
    t = time.perf_counter()
    pbatch, _ = pclient.score_matrix(X, mode="probability")
    pbatch_wall = time.perf_counter() - t
    return {
        "params": _params(pclient),
        "polynomial": {"degree": 3, "interval": [round(lo, 3), round(hi, 3)],
                       "max_abs_error_on_interval": round(ckks.poly_error(poly, lo, hi), 5)},
        "e2e_ms_p50": _pct(pe2e, 50), "e2e_ms_p95": _pct(pe2e, 95), "server_ms_p50": _pct(pserver, 50),
        "context_bytes": pclient.keys.context_bytes,
        "max_abs_error_vs_exact_sigmoid": float(np.max(np.abs(pprobs_a - pref))),
        "max_abs_error_vs_plain_polynomial": float(np.max(np.abs(pprobs_a - poly_plain))),
        "decision_agreement": float(np.mean((pprobs_a >= 0.5) == (pref >= 0.5))),
        "batched_scores_per_s": round(len(X) / pbatch_wall, 1),
        "batched_decision_agreement": float(np.mean((pbatch >= 0.5) == (ref >= 0.5))),
        "batched_max_abs_error_vs_exact_sigmoid": float(np.max(np.abs(pbatch - ref))),
    }


def _compact(cclient: ScoringClient, rows: list[dict[str, float]], ref: np.ndarray, n_prob: int,
             default_e2e_ms: list[float]) -> dict[str, Any]:
    """The compact parameters (N=4096), same protocol, against the default preset on the same rows."""
    cclient.score(rows[0])
    ce2e, cprobs, creq = [], [], []
    for row in rows[:n_prob]:
        r = cclient.score(row)
        ce2e.append(r.timings["e2e_ms"])
        cprobs.append(r.probability)
        creq.append(r.timings["request_bytes"])
    return {"params": _params(cclient),
            "e2e_ms_p50": _pct(ce2e, 50), "e2e_ms_p95": _pct(ce2e, 95),
            "request_bytes": int(np.median(creq)), "context_bytes": cclient.keys.context_bytes,
            "max_abs_error": float(np.max(np.abs(np.asarray(cprobs) - ref[: len(cprobs)]))),
            "decision_agreement": float(np.mean((np.asarray(cprobs) >= 0.5) == (ref[: len(cprobs)] >= 0.5))),
            # Default-preset latency over the same rows and the same moment, for a fair comparison.
            "default_e2e_ms_p50_same_rows": _pct(default_e2e_ms[: n_prob], 50)}


def _params(client: ScoringClient) -> dict[str, Any]:
    p = client.keys.params
    return {"poly_modulus_degree": p.poly_modulus_degree, "coeff_mod_bit_sizes": list(p.coeff_mod_bit_sizes),
            "scale_bits": p.scale_bits}


def run_benchmark(base_url: str | None = None, n_single: int = 200, n_prob: int = 50,
                  progress: Callable[[str], None] | None = None, settings: Any = None,
                  batch_chunks: int = 4) -> dict[str, Any]:
    """Run the whole benchmark against ``base_url`` (or a child service on a free port)."""
    say = progress or (lambda _m: None)
    load_before = _load_avg()
    model = load_artifact(settings)
    X, _y = model.held_out_set()
    ref = model.predict_proba(X)
    service = None
    if base_url is None:
        say("starting the scoring service on loopback")
        service = start_in_background(host="127.0.0.1", port=free_port(), settings=settings)
        base_url = service.base_url
    try:
        features = model.features
        client = ScoringClient(settings, base_url=base_url, artifact=model)
        t = time.perf_counter()
        client.keys  # noqa: B018 - key generation, timed on its own
        keygen_ms = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        client.register()
        register_ms = (time.perf_counter() - t) * 1e3

        say(f"single: {n_single} encrypted requests")
        n_single = min(n_single, len(X))
        rows = [dict(zip(features, X[i])) for i in range(n_single)]
        single, timing, plain_ms = _single(client, model, rows, ref)
        say(f"batched: {client.keys.params.slot_count * batch_chunks} customers, "
            f"{client.keys.params.slot_count} per ciphertext")
        batched = _batched(client, model, X, ref, batch_chunks)
        say(f"probability mode: {n_prob} requests")
        pclient = ScoringClient(settings, base_url=base_url, preset="probability", artifact=model)
        probability = _probability_mode(pclient, model, X, ref, rows, n_prob)
        say(f"compact preset: {n_prob} requests")
        cclient = ScoringClient(settings, base_url=base_url, preset="compact", artifact=model)
        compact = _compact(cclient, rows, ref, n_prob, timing["e2e_ms"])
        client.close()
        pclient.close()
        cclient.close()
    finally:
        if service is not None:
            service.stop()

    plain_p50 = _pct(plain_ms, 50)
    return {
        "single": single,
        "batched": batched,
        "probability_mode": probability,
        "compact_preset": compact,
        "params": _params(client) | {"galois_steps": list(ckks.ROTATION_STEPS), "security_bits": 128},
        "context_bytes": client.keys.context_bytes,
        "keygen_ms": round(keygen_ms, 1),
        "register_ms": round(register_ms, 1),
        "max_abs_error": max(single["max_abs_error"], batched["max_abs_error"]),
        "decision_agreement": min(single["decision_agreement"], batched["decision_agreement"]),
        "test_set_size": int(len(X)),
        "plaintext_ms_p50": plain_p50,
        "overhead_ratio": round(single["e2e_ms_p50"] / plain_p50, 1) if plain_p50 > 0 else None,
        "model_version": model.version,
        # Other work on the same cores inflates latencies: record how busy the machine was.
        "machine": {"cpus": os.cpu_count(), "load_avg_1m_before": load_before, "load_avg_1m_after": _load_avg()},
    }
