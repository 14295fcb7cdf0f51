"""The scoring service over real HTTP on loopback: protocol, accuracy and every 4xx path."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest
import tenseal as ts
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from models.scoring import ScoringModel
from privacy import ckks
from privacy.client import ScoringClient
from privacy.service import EncryptedEvaluator


def _post(service, path, **kw):
    return httpx.post(service.base_url + path, timeout=30, **kw)


def _error(resp, status, code):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["error"]["code"] == code
    assert "Traceback" not in resp.text


def test_health_and_model_info_reveal_no_weights(service, artifact):
    h = httpx.get(service.base_url + "/v1/health").json()
    assert h["status"] == "ok" and h["version"] == artifact.version
    info = httpx.get(service.base_url + "/v1/model")
    assert info.json()["features"] == list(artifact.features)
    for w in list(artifact.weights) + [artifact.bias]:
        assert repr(w)[:10] not in info.text


def test_encrypted_scores_match_plaintext(client, artifact):
    X, _ = artifact.held_out_set()
    ref = artifact.predict_proba(X[:20])
    for i in range(20):
        r = client.score(dict(zip(artifact.features, X[i])))
        assert abs(r.probability - ref[i]) < 1e-3
        assert r.approved == (ref[i] >= artifact.threshold)
        assert r.request_id and r.timings["server_ms"] > 0 and r.timings["request_bytes"] < 500_000


def test_raw_inputs_are_derived_and_defaults_reported(client):
    r = client.score({"monthly_income": 90_000, "loan_amount": 300_000, "tenure_months": 36})
    assert 0.0 <= r.probability <= 1.0
    assert "credit_utilisation" in r.assumed and "monthly_income" not in r.assumed
    poor = client.score({"monthly_income": 20_000, "existing_emis": 12_000, "loan_amount": 2_000_000,
                         "tenure_months": 24, "missed_payments_24m": 4, "credit_utilisation": 0.95})
    assert not poor.approved and poor.probability < r.probability
    assert any("EMI" in f or "missed" in f for f in poor.factors)


def test_batched_scoring_matches_plaintext(client, artifact):
    X, _ = artifact.held_out_set()
    X = X[:500]
    probs, tot = client.score_matrix(X)
    ref = artifact.predict_proba(X)
    assert np.max(np.abs(probs - ref)) < 1e-3
    assert np.array_equal(probs >= 0.5, ref >= 0.5)
    assert tot["requests"] == 1


def test_probability_mode_keeps_the_sigmoid_encrypted(service, artifact):
    X, _ = artifact.held_out_set()
    ref = artifact.predict_proba(X[:5])
    c = ScoringClient(base_url=service.base_url, preset="probability", artifact=artifact, timeout=30)
    try:
        for i in range(5):
            r = c.score(dict(zip(artifact.features, X[i])), mode="probability")
            assert r.logit is None
            lo, hi = ckks.linear_score_range(artifact.weights, artifact.bias, artifact.feature_range)
            assert abs(r.probability - ref[i]) <= ckks.poly_error(ckks.scoring_polynomial(lo, hi), lo, hi) + 1e-3
            assert r.approved == (ref[i] >= 0.5)
    finally:
        c.close()


# A clear decline: unclipped its linear score is far below the old polynomial's interval (z ≈ −37,
# where the old fit gave p ≈ 30, an approval).
CLEAR_DECLINE = {"monthly_income": 12_000, "existing_emis": 9_000, "loan_amount": 4_000_000, "tenure_months": 12,
                 "missed_payments_24m": 12, "credit_utilisation": 1.0, "recent_enquiries_6m": 15,
                 "credit_history_years": 0.5, "employment_years": 0.2}


def test_probability_mode_keeps_clear_declines_declined(service, artifact):
    logit = ScoringClient(base_url=service.base_url, artifact=artifact, timeout=30)
    prob = ScoringClient(base_url=service.base_url, preset="probability", artifact=artifact, timeout=30)
    try:
        exact = logit.score(CLEAR_DECLINE)
        assert exact.logit is not None and exact.logit < -14 and not exact.approved
        r = prob.score(CLEAR_DECLINE, mode="probability")
        assert not r.approved and 0.0 <= r.probability < 0.2 and r.clipped  # brought into the training box
        # Batched mode clips the same way.
        X, _ = artifact.held_out_set()
        x_bad, _ = prob.prepare(CLEAR_DECLINE)
        probs, _ = prob.score_matrix(np.vstack([x_bad, X[:50]]), mode="probability")
        ref = artifact.predict_proba(X[:50])
        assert probs[0] < 0.2 and np.array_equal(probs[1:] >= 0.5, ref >= 0.5)
        info = httpx.get(service.base_url + "/v1/model").json()["sigmoid_polynomial"]
        assert info["interval"][0] < -12 and info["max_abs_error"] < 0.25
    finally:
        logit.close()
        prob.close()


def test_probability_mode_is_refused_for_a_model_without_a_feature_range(artifact):
    record = artifact.to_record()
    del record["bank"]["feature_range"]  # as in artifacts written before the box was added
    old = ScoringModel.from_record(record)
    assert old.feature_range is None
    assert EncryptedEvaluator(old).poly is None
    c = ScoringClient(base_url="http://127.0.0.1:9", preset="probability", artifact=old, timeout=5)
    with pytest.raises(Exception, match="feature range"):
        c.clip_to_box(np.zeros(len(artifact.features)))


def test_context_with_secret_key_is_refused(service, logit_keys):
    with_secret = logit_keys.private.serialize(save_secret_key=True)
    resp = _post(service, "/v1/sessions", json={"context": base64.b64encode(with_secret).decode()})
    _error(resp, 400, "secret_key_present")


@pytest.mark.parametrize("body,status,code", [
    (b"{not json", 400, "malformed_json"),
    (b"[1, 2, 3]", 422, "invalid_request"),
    (b'{"context": 5}', 422, "invalid_request"),
    (b'{"context": "***not base64***"}', 400, "malformed_context"),
    (json.dumps({"context": base64.b64encode(b"garbage" * 50).decode()}).encode(), 400, "malformed_context"),
])
def test_malformed_session_requests(service, body, status, code):
    resp = _post(service, "/v1/sessions", content=body, headers={"Content-Type": "application/json"})
    _error(resp, status, code)


def test_oversized_requests_are_refused(service, session_id):
    big = b"\0" * (600 * 1024)
    _error(_post(service, "/v1/score", content=big, headers={"X-Session-Id": session_id}), 413, "too_large")
    _error(_post(service, "/v1/sessions", content=b"x" * (9 * 1024 * 1024)), 413, "too_large")


def test_unknown_session_and_bad_mode(service, session_id, logit_keys):
    blob = ts.ckks_vector(logit_keys.private, [0.0] * 16).serialize()
    _error(_post(service, "/v1/score", content=blob, headers={"X-Session-Id": "nope"}), 404, "unknown_session")
    _error(_post(service, "/v1/score", content=blob), 404, "unknown_session")
    _error(_post(service, "/v1/score?mode=cube", content=blob, headers={"X-Session-Id": session_id}),
           422, "invalid_mode")
    # The logit context has one level: the polynomial sigmoid is refused, not attempted.
    _error(_post(service, "/v1/score?mode=probability", content=blob, headers={"X-Session-Id": session_id}),
           400, "insufficient_depth")


def test_malformed_and_wrong_context_ciphertexts(service, client, session_id):
    hdr = {"X-Session-Id": session_id}
    _error(_post(service, "/v1/score", content=b"", headers=hdr), 400, "empty_body")
    _error(_post(service, "/v1/score", content=b"\x01garbage" * 100, headers=hdr), 400, "bad_ciphertext")
    # A ciphertext made under different parameters (the probability preset) does not fit this context.
    other = ckks.generate_keys("probability")
    foreign = ts.ckks_vector(other.private, [0.1] * 16).serialize()
    _error(_post(service, "/v1/score", content=foreign, headers=hdr), 400, "bad_ciphertext")
    # Right context, wrong shape.
    short = ts.ckks_vector(client.keys.private, [0.1] * 8).serialize()
    _error(_post(service, "/v1/score", content=short, headers=hdr), 422, "wrong_size")
    # A truncated real ciphertext.
    good = ts.ckks_vector(client.keys.private, [0.1] * 16).serialize()
    _error(_post(service, "/v1/score", content=good[: len(good) // 2], headers=hdr), 400, "bad_ciphertext")


def test_malformed_batches(service, client, session_id):
    hdr = {"X-Session-Id": session_id}
    _error(_post(service, "/v1/score/batch", content=b"nonsense", headers=hdr), 400, "bad_frames")
    one = ts.ckks_vector(client.keys.private, [0.1] * 4).serialize()
    _error(_post(service, "/v1/score/batch", content=ckks.pack_frames([one] * 3), headers=hdr), 422, "wrong_size")
    two = ts.ckks_vector(client.keys.private, [0.1] * 5).serialize()
    frames = [one] * 12 + [two]
    _error(_post(service, "/v1/score/batch", content=ckks.pack_frames(frames), headers=hdr), 422, "wrong_size")


def test_client_re_registers_when_the_service_forgets(service, artifact):
    c = ScoringClient(base_url=service.base_url, artifact=artifact, timeout=30)
    try:
        sid = c.register()
        assert httpx.delete(f"{service.base_url}/v1/sessions/{sid}").status_code == 200
        r = c.score({"monthly_income": 70_000, "loan_amount": 200_000, "tenure_months": 24})
        assert c.register() != sid and 0 <= r.probability <= 1
    finally:
        c.close()


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(min_size=1, max_size=4096))
def test_random_bodies_never_cause_a_server_error(service, session_id, body):
    for path in ("/v1/score", "/v1/score/batch"):
        resp = _post(service, path, content=body, headers={"X-Session-Id": session_id})
        assert 400 <= resp.status_code < 500, (path, resp.status_code, resp.text)
        assert "error" in resp.json()


def test_defaulted_inputs_are_never_cited_as_factors(client):
    r = client.score({"monthly_income": 90_000, "loan_amount": 300_000, "tenure_months": 36})
    assert "missed_payments_24m" in r.assumed
    assert not any("missed payments" in f or "credit history" in f for f in r.factors)
    told = client.score({"monthly_income": 90_000, "loan_amount": 300_000, "tenure_months": 36,
                         "missed_payments_24m": 0, "credit_history_years": 15})
    assert any("missed payments" in f or "credit history" in f for f in told.factors)


def test_request_id_is_echoed_only_when_it_is_a_plain_token(service, client, session_id):
    blob = ts.ckks_vector(client.keys.private, [0.0] * 16).serialize()
    hdr = {"X-Session-Id": session_id, "X-Request-Id": "abc-123"}
    assert _post(service, "/v1/score", content=blob, headers=hdr).headers["x-request-id"] == "abc-123"
    hdr["X-Request-Id"] = "x" * 500
    rid = _post(service, "/v1/score", content=blob, headers=hdr).headers["x-request-id"]
    assert len(rid) == 32 and rid != hdr["X-Request-Id"]


def test_compact_preset_scores_within_tolerance(service, artifact):
    X, _ = artifact.held_out_set()
    ref = artifact.predict_proba(X[:10])
    c = ScoringClient(base_url=service.base_url, preset="compact", artifact=artifact, timeout=30)
    try:
        for i in range(10):
            r = c.score(dict(zip(artifact.features, X[i])))
            assert abs(r.probability - ref[i]) < 1e-3 and r.timings["request_bytes"] < 100_000
    finally:
        c.close()
