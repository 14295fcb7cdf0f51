"""CKKS parameters, key material and wire formats shared by the bank side and the service.

Parameter choice (all ≥ 128-bit security by the HomomorphicEncryption.org table that SEAL
enforces: N=8192 allows at most 218 bits of coefficient modulus):

``logit`` (default, single and batched scoring) — N=8192, moduli [60, 40, 60] (160 bits),
scale 2^40. One level: a plaintext multiply (w·x) then rescale; the bias is an add. The
60-bit first prime leaves 20 bits above the 2^40 scale for the integer part of the logit.
The service returns the encrypted *logit*; the client applies the exact sigmoid after
decrypting. The sigmoid is a public bijection, so the logit reveals exactly what the
probability would, and it costs no multiplicative depth and no approximation error.

``compact`` — N=4096, moduli [40, 29, 40] (109 bits, the 128-bit maximum for N=4096),
scale 2^29: the same one-level logit protocol with ≈86 KB requests instead of ≈235 KB, at
the cost of precision (max probability error ≈3e-4 instead of ≈1e-7); not the default.

``probability`` — N=8192, moduli [60, 30, 30, 30, 60] (210 bits), scale 2^30. Three
levels: w·x, then a degree-3 polynomial of the sigmoid (one level for z² and a3·z, one for
their product), for deployments where even the key holder's copy of the logit must not
exist. A polynomial is only close to the sigmoid on the interval it was fitted on and
diverges outside it (the old fit on [-12, 12] gave 12.2 at z = -30, an approval), so the
scoring polynomial is fitted per model on the *guaranteed* range of its linear score
(:func:`linear_score_range`: the bank clips the standardised features to the training
box, the weights then bound z), with p(0) = 1/2 pinned so that p ≥ 1/2 exactly when
z ≥ 0 (:func:`scoring_polynomial`, checked by :func:`decision_safe`). The fixed fit on
[-12, 12] below stays the building block of encrypted training.

Galois keys: the single-customer dot product sums 16 replicated slots with rotations by
8, 4, 2, 1, so only those four keys are generated (≈1.4 MB instead of ≈18 MB for the
full power-of-two set). Batched (feature-major) scoring needs no rotations at all.
Relinearisation keys are generated only for the ``probability`` preset (ciphertext
products). Encryption is symmetric: the service gets no public key and no secret key.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

if TYPE_CHECKING:
    import tenseal as ts

SLOTS_SINGLE = 16  # the feature vector is zero-padded to a power of two for the rotation sum
MAX_FRAMES = 64
_FRAME_MAGIC = b"SHKF"


@dataclass(frozen=True)
class CkksParams:
    """One CKKS parameter set."""

    name: str
    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int
    relin_keys: bool

    @property
    def depth(self) -> int:
        """Multiplicative levels available (data primes between the first and the special one)."""
        return len(self.coeff_mod_bit_sizes) - 2

    @property
    def slot_count(self) -> int:
        return self.poly_modulus_degree // 2


PRESETS: dict[str, CkksParams] = {
    "logit": CkksParams("logit", 8192, (60, 40, 60), 40, relin_keys=False),
    "probability": CkksParams("probability", 8192, (60, 30, 30, 30, 60), 30, relin_keys=True),
    # N=4096 allows 109 bits: one level at scale 2^29 — a third of the bytes, ~1e-4 probability error.
    "compact": CkksParams("compact", 4096, (40, 29, 40), 29, relin_keys=False),
}
# Levels each evaluation mode consumes; the service refuses a context that has fewer.
MODE_DEPTH = {"logit": 1, "probability": 3}  # evaluation modes (the "compact" preset serves "logit")
ROTATION_STEPS = (1, 2, 4, 8)

# Degree-3 least-squares fit of the sigmoid on [-12, 12] (max error 0.168), used by encrypted
# training. Scoring uses scoring_polynomial() on the model's guaranteed score range instead.
SIGMOID_INTERVAL = (-12.0, 12.0)
SIGMOID_DEGREE = 3


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    """The exact logistic function, numerically stable for large |z|."""
    z = np.asarray(z, dtype=float)
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


@lru_cache(maxsize=8)
def sigmoid_poly_coefficients(degree: int = SIGMOID_DEGREE,
                              interval: tuple[float, float] = SIGMOID_INTERVAL) -> tuple[float, ...]:
    """Least-squares polynomial coefficients (lowest degree first) approximating the sigmoid."""
    xs = np.linspace(interval[0], interval[1], 4001)
    coeffs = np.polynomial.polynomial.polyfit(xs, sigmoid(xs), degree)
    return tuple(float(c) for c in coeffs)


def sigmoid_poly_error(degree: int = SIGMOID_DEGREE, interval: tuple[float, float] = SIGMOID_INTERVAL) -> float:
    """Maximum absolute error of the polynomial sigmoid on its interval (documented in the card)."""
    xs = np.linspace(interval[0], interval[1], 4001)
    approx = np.polynomial.polynomial.polyval(xs, sigmoid_poly_coefficients(degree, interval))
    return float(np.max(np.abs(approx - sigmoid(xs))))


def linear_score_range(weights: np.ndarray | list[float], bias: float,
                       box: list[list[float]] | np.ndarray) -> tuple[float, float]:
    """The exact range of ``w·x + b`` over the box ``lo_j ≤ x_j ≤ hi_j`` (each term at a corner)."""
    w = np.asarray(weights, dtype=float)
    b = np.asarray(box, dtype=float)
    if b.shape != (len(w), 2) or np.any(b[:, 0] > b[:, 1]):
        raise ValueError("the feature box must be one [low, high] pair per weight")
    lo_terms, hi_terms = w * b[:, 0], w * b[:, 1]
    return (float(bias + np.minimum(lo_terms, hi_terms).sum()), float(bias + np.maximum(lo_terms, hi_terms).sum()))


@lru_cache(maxsize=16)
def scoring_polynomial(low: float, high: float) -> tuple[float, float, float, float]:
    """Degree-3 least-squares sigmoid on [low, high] with a0 = 1/2 pinned (lowest degree first).

    Pinning p(0) = 1/2 keeps the decision threshold where the exact sigmoid has it; the fit
    then only has to keep p − 1/2 = z·(a1 + a2·z + a3·z²) of the sign of z, which
    :func:`decision_safe` checks. The interval may be asymmetric (a credit model's scores are).
    """
    if not low < 0.0 < high:
        raise ValueError("the score range must contain 0 (the decision threshold)")
    xs = np.linspace(low, high, 4001)
    basis = np.stack([xs, xs ** 2, xs ** 3], axis=1)
    coeffs, *_ = np.linalg.lstsq(basis, sigmoid(xs) - 0.5, rcond=None)
    return (0.5, float(coeffs[0]), float(coeffs[1]), float(coeffs[2]))


def poly_error(coeffs: tuple[float, ...], low: float, high: float) -> float:
    """Maximum absolute error of a polynomial sigmoid (clamped to [0, 1], as the bank does) on [low, high]."""
    xs = np.linspace(low, high, 4001)
    approx = np.clip(np.polynomial.polynomial.polyval(xs, coeffs), 0.0, 1.0)
    return float(np.max(np.abs(approx - sigmoid(xs))))


def decision_safe(coeffs: tuple[float, ...], low: float, high: float) -> bool:
    """True when p(z) ≥ 1/2 exactly for z ≥ 0 on [low, high]: a0 = 1/2 and a1 + a2·z + a3·z² > 0 there."""
    a0, a1, a2, a3 = coeffs
    if abs(a0 - 0.5) > 1e-12 or a1 <= 0:
        return False
    q = np.polynomial.Polynomial([a1, a2, a3])
    real = [float(r.real) for r in np.atleast_1d(q.roots()) if abs(r.imag) < 1e-12]
    return all(not low <= r <= high for r in real)


# --------------------------------------------------------------------------------------
# TenSEAL context protobuf (tenseal/proto/tensealcontext.proto), built at run time so we can
# attach Galois keys for chosen rotations only — TenSEAL's own API generates all of them.
@lru_cache(maxsize=1)
def _context_proto_class() -> Any:
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="sahayak_tenseal_context.proto", package="sahayak_ts",
                                             syntax="proto3")

    def add(name: str, fields: list[tuple[str, int, str | None]]) -> None:
        msg = fdp.message_type.add(name=name)
        for number, (fname, ftype, tname) in enumerate(fields, 1):
            fld = msg.field.add(name=fname, number=number, type=ftype, label=F.LABEL_OPTIONAL)
            if tname:
                fld.type_name = tname

    add("Private", [("secret_key", F.TYPE_BYTES, None), ("relin_keys_generated", F.TYPE_BOOL, None),
                    ("galois_keys_generated", F.TYPE_BOOL, None)])
    add("Public", [("public_key", F.TYPE_BYTES, None), ("auto_flags", F.TYPE_UINT32, None),
                   ("scale", F.TYPE_DOUBLE, None), ("relin_keys", F.TYPE_BYTES, None),
                   ("galois_keys", F.TYPE_BYTES, None)])
    add("Context", [("encryption_parameters", F.TYPE_BYTES, None),
                    ("public_context", F.TYPE_MESSAGE, ".sahayak_ts.Public"),
                    ("private_context", F.TYPE_MESSAGE, ".sahayak_ts.Private"),
                    ("encryption_type", F.TYPE_UINT32, None)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("sahayak_ts.Context"))


def parse_context_proto(data: bytes) -> Any:
    """Parse serialised TenSEAL context bytes into a protobuf message (raises ValueError)."""
    try:
        return _context_proto_class().FromString(data)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and friends
        raise ValueError("not a TenSEAL context") from exc


@lru_cache(maxsize=1)
def _vector_proto_class() -> Any:
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="sahayak_tenseal_vector.proto", package="sahayak_tv",
                                             syntax="proto3")
    msg = fdp.message_type.add(name="CKKSVector")
    msg.field.add(name="sizes", number=1, type=F.TYPE_UINT32, label=F.LABEL_REPEATED)
    msg.field.add(name="ciphertexts", number=2, type=F.TYPE_BYTES, label=F.LABEL_REPEATED)
    msg.field.add(name="scale", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("sahayak_tv.CKKSVector"))


def with_logical_size(blob: bytes, size: int) -> bytes:
    """Re-label a serialised CKKS vector's logical size without touching the ciphertext.

    After a rotate-and-sum over a period-``size`` replicated vector every slot holds the
    sum, but TenSEAL records the result as size 1; relabelling lets it be used element-wise
    against size-``size`` vectors again (no level, no rotation spent on re-replication).
    """
    msg = _vector_proto_class().FromString(blob)
    del msg.sizes[:]
    msg.sizes.append(size)
    return msg.SerializeToString()


def _shm_dir() -> str | None:
    """A RAM-backed folder for the brief SEAL file I/O (SEAL's Python API loads from paths only)."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _galois_keys_for_steps(params_bytes: bytes, secret_key_bytes: bytes, steps: tuple[int, ...],
                           poly_modulus_degree: int) -> bytes:
    """SEAL-serialised Galois keys for the given rotation steps only."""
    import tenseal.sealapi as seal  # heavy (SEAL): deferred so importing this module stays light

    with tempfile.TemporaryDirectory(dir=_shm_dir()) as tmp:  # 0700, removed at once
        p_path, sk_path, gk_path = (str(Path(tmp) / n) for n in ("parms", "sk", "gk"))
        Path(p_path).write_bytes(params_bytes)
        Path(sk_path).write_bytes(secret_key_bytes)
        parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
        parms.load(p_path)
        sctx = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
        sk = seal.SecretKey()
        sk.load(sctx, sk_path)
        # Galois element for a left rotation by k slots is 3^k mod 2N (SEAL's generator).
        elements = [pow(3, k, 2 * poly_modulus_degree) for k in steps]
        seal.KeyGenerator(sctx, sk).create_galois_keys(elements).save(gk_path)
        return Path(gk_path).read_bytes()


@dataclass
class KeyPair:
    """The bank side's private context and the public evaluation context sent to the service."""

    params: CkksParams
    private: "ts.Context"
    public_bytes: bytes

    @property
    def context_bytes(self) -> int:
        return len(self.public_bytes)


def generate_keys(preset: str | CkksParams = "logit", rotations: bool = True, n_threads: int = 1,
                  steps: tuple[int, ...] = ROTATION_STEPS) -> KeyPair:
    """Create a fresh secret key and the matching public evaluation context (no secret key).

    ``steps`` are the rotations the evaluator may perform (Galois keys for those only).
    """
    import tenseal as ts  # heavy (SEAL): deferred so importing this module stays light

    params = PRESETS[preset] if isinstance(preset, str) else preset
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                     coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
                     encryption_type=ts.ENCRYPTION_TYPE.SYMMETRIC, n_threads=n_threads)
    ctx.global_scale = 2.0 ** params.scale_bits
    if params.relin_keys:
        ctx.generate_relin_keys()
    full = parse_context_proto(ctx.serialize(save_secret_key=True, save_galois_keys=False,
                                             save_relin_keys=params.relin_keys))
    public = parse_context_proto(ctx.serialize(save_public_key=False, save_secret_key=False,
                                               save_galois_keys=False, save_relin_keys=params.relin_keys))
    if rotations:
        public.public_context.galois_keys = _galois_keys_for_steps(
            full.encryption_parameters, full.private_context.secret_key, steps, params.poly_modulus_degree)
    # A public context must not carry the private sub-message at all (TenSEAL then loads it
    # as evaluation-only, and there is nothing secret to leak).
    public.ClearField("private_context")
    return KeyPair(params=params, private=ctx, public_bytes=public.SerializeToString())


def describe_context(ctx: "ts.Context") -> dict[str, Any]:
    """Parameters of a loaded context (for the session response and error messages)."""
    import tenseal.sealapi  # noqa: F401 - registers seal::Modulus, returned by coeff_modulus(); deferred: heavy

    parms = ctx.seal_context().data.key_context_data().parms()
    bits = [m.bit_count() for m in parms.coeff_modulus()]
    return {"poly_modulus_degree": parms.poly_modulus_degree(), "coeff_mod_bit_sizes": bits,
            "scale_bits": round(math.log2(ctx.global_scale), 3) if ctx.global_scale > 0 else None,
            "depth": len(bits) - 2}


# --------------------------------------------------------------------------------------
# Framing for several ciphertexts in one body (batched mode): magic, count, lengths, blobs.
def pack_frames(blobs: list[bytes]) -> bytes:
    """Concatenate ciphertext blobs into one length-prefixed body."""
    header = _FRAME_MAGIC + struct.pack("<I", len(blobs)) + b"".join(struct.pack("<Q", len(b)) for b in blobs)
    return header + b"".join(blobs)


def unpack_frames(body: bytes, max_frames: int = MAX_FRAMES) -> list[bytes]:
    """Split a body made by :func:`pack_frames`; raises ValueError on any inconsistency."""
    if len(body) < 8 or body[:4] != _FRAME_MAGIC:
        raise ValueError("batched body must start with the SHKF frame header")
    (count,) = struct.unpack_from("<I", body, 4)
    if not 1 <= count <= max_frames:
        raise ValueError(f"frame count {count} outside 1..{max_frames}")
    offset = 8 + 8 * count
    if len(body) < offset:
        raise ValueError("truncated frame header")
    lengths = struct.unpack_from(f"<{count}Q", body, 8)
    if offset + sum(lengths) != len(body):
        raise ValueError("frame lengths do not match the body size")
    out = []
    for n in lengths:
        out.append(body[offset:offset + n])
        offset += n
    return out
