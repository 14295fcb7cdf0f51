"""CKKS parameters, the public evaluation context (no secret key) and the wire framing."""

from __future__ import annotations

import numpy as np
import pytest
import tenseal as ts
from hypothesis import given, settings as hsettings, strategies as st

from privacy import ckks


def test_public_context_carries_no_secret_key(logit_keys):
    """The proof: the bytes sent to the service hold no secret key and cannot decrypt."""
    full = ckks.parse_context_proto(logit_keys.private.serialize(save_secret_key=True))
    secret = full.private_context.secret_key
    assert len(secret) > 1000  # the private side really has one

    sent = logit_keys.public_bytes
    proto = ckks.parse_context_proto(sent)
    assert not proto.HasField("private_context")
    assert proto.public_context.public_key == b""  # symmetric scheme: not even a public key
    assert secret not in sent and secret[64:1064] not in sent

    server_ctx = ts.context_from(sent)
    assert server_ctx.is_public() and not server_ctx.has_secret_key()
    enc = ts.ckks_vector(logit_keys.private, [1.0, 2.0, 3.0])
    on_server = ts.ckks_vector_from(server_ctx, enc.serialize())
    with pytest.raises(ValueError):
        on_server.decrypt()
    # ...and it cannot encrypt either (the symmetric scheme needs the secret key).
    with pytest.raises(ValueError):
        ts.ckks_vector(server_ctx, [1.0])


def test_only_the_needed_galois_keys_are_generated(logit_keys):
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 60])
    ctx.generate_galois_keys()
    all_keys = len(ctx.serialize(save_secret_key=False))
    assert logit_keys.context_bytes < all_keys / 8  # 4 rotation keys instead of ~24
    server_ctx = ts.context_from(logit_keys.public_bytes)
    assert server_ctx.has_galois_keys() and not server_ctx.has_relin_keys()


def test_parameters_are_128_bit_secure_and_deep_enough():
    limits = {4096: 109, 8192: 218, 16384: 438}  # HomomorphicEncryption.org standard, enforced by SEAL
    for name, p in ckks.PRESETS.items():
        assert sum(p.coeff_mod_bit_sizes) <= limits[p.poly_modulus_degree], name
        assert p.depth >= ckks.MODE_DEPTH.get(name, 1), name


def test_encrypted_dot_product_matches_numpy(logit_keys):
    server_ctx = ts.context_from(logit_keys.public_bytes)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, w = rng.normal(size=16), rng.normal(size=16)
        enc = ts.ckks_vector_from(server_ctx, ts.ckks_vector(logit_keys.private, x.tolist()).serialize())
        out = enc.dot(w.tolist())
        got = ts.ckks_vector_from(logit_keys.private, out.serialize()).decrypt()
        assert len(got) == 1 and abs(got[0] - float(x @ w)) < 1e-4


def test_sigmoid_polynomial_is_documented_and_odd():
    a0, a1, a2, a3 = ckks.sigmoid_poly_coefficients()
    assert abs(a0 - 0.5) < 1e-9 and abs(a2) < 1e-9 and a1 > 0 > a3
    err = ckks.sigmoid_poly_error()
    assert 0.1 < err < 0.2  # the documented 0.168 on [-12, 12]
    assert ckks.sigmoid_poly_error(3, (-4.0, 4.0)) < err  # narrower interval, smaller error


def test_the_old_fixed_polynomial_diverges_outside_its_interval():
    # The bug this guards against: the [-12, 12] fit evaluated at z = -30 is 12.2, an approval.
    assert np.polynomial.polynomial.polyval(-30.0, ckks.sigmoid_poly_coefficients()) > 12


def test_linear_score_range_is_exact_on_the_box():
    w, b = np.array([2.0, -1.0, 0.0]), 0.5
    box = [[-1.0, 3.0], [-2.0, 4.0], [-5.0, 5.0]]
    lo, hi = ckks.linear_score_range(w, b, box)
    rng = np.random.default_rng(0)
    pts = rng.uniform([r[0] for r in box], [r[1] for r in box], size=(5000, 3))
    assert lo == 0.5 - 2 - 4 and hi == 0.5 + 6 + 2
    assert lo <= (pts @ w + b).min() and (pts @ w + b).max() <= hi


def test_scoring_polynomial_on_the_model_range_keeps_every_decision(artifact):
    w, b = artifact.weights, artifact.bias
    lo, hi = ckks.linear_score_range(w, b, artifact.feature_range)
    assert lo < -12  # the shipped model's scores go beyond the old fixed interval
    poly = ckks.scoring_polynomial(lo, hi)
    assert poly[0] == 0.5 and ckks.decision_safe(poly, lo, hi)
    zs = np.linspace(lo, hi, 20001)
    p = np.clip(np.polynomial.polynomial.polyval(zs, poly), 0, 1)
    assert np.array_equal(p >= 0.5, zs >= 0)  # the approval decision is the exact sigmoid's on the whole range
    assert ckks.poly_error(poly, lo, hi) < 0.25  # measured 0.215 on [-22.4, 6.2]
    # On the real score distribution (held-out applicants) the mean error stays small.
    X, _ = artifact.held_out_set()
    Z = (X - np.asarray(artifact.mean)) / np.asarray(artifact.std)
    z = Z @ np.asarray(w) + b
    err = np.abs(np.clip(np.polynomial.polynomial.polyval(z, poly), 0, 1) - ckks.sigmoid(z))
    assert err.mean() < 0.13 and np.array_equal(np.polynomial.polynomial.polyval(z, poly) >= 0.5, z >= 0)


def test_decision_safe_rejects_a_polynomial_that_turns_back():
    old = ckks.sigmoid_poly_coefficients()  # a3 < 0: p − ½ changes sign again at |z| ≈ 14
    assert ckks.decision_safe(old, -12, 12) and not ckks.decision_safe(old, -30, 12)
    assert not ckks.decision_safe((0.4, 0.1, 0.0, 0.0), -5, 5)  # p(0) ≠ ½ moves the threshold


def test_sigmoid_is_stable_for_large_inputs():
    z = np.array([-800.0, -5.0, 0.0, 5.0, 800.0])
    p = ckks.sigmoid(z)
    assert np.all(np.isfinite(p)) and p[0] == 0.0 and p[2] == 0.5 and p[-1] == 1.0


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=8))
def test_frames_round_trip(blobs):
    assert ckks.unpack_frames(ckks.pack_frames(blobs)) == blobs


@hsettings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_malformed_frames_raise_value_error(body):
    try:
        frames = ckks.unpack_frames(body)
    except ValueError:
        return
    assert ckks.pack_frames(frames) == body  # anything accepted is a well-formed body


def test_frame_limits():
    with pytest.raises(ValueError, match="frame count"):
        ckks.unpack_frames(ckks.pack_frames([b"x"] * (ckks.MAX_FRAMES + 1)))
    body = ckks.pack_frames([b"abc", b"de"])
    with pytest.raises(ValueError, match="do not match"):
        ckks.unpack_frames(body + b"!")
