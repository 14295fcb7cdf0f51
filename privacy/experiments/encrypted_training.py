"""Training on encrypted data (CKKS): logistic regression and the toy linear regression.

Roles, as in scoring: the *data owner* (bank side) holds the secret key and encrypts the
training data; the *trainer* (server side) receives only a public evaluation context and
ciphertexts, and runs full-batch gradient descent entirely on ciphertexts — the data, the
predictions, the gradients and the weights stay encrypted; no gradient is ever decrypted.

Packing is feature-major: one ciphertext per feature holding that feature for every sample
(one sample per slot, replicated with period ``n`` so a rotate-and-sum over log2(n) steps
leaves the sum in every slot). Each weight is a ciphertext with the weight in every slot.
One step of logistic regression:

    z   = Σ_j w_j ⊙ x_j                       1 level (ciphertext × ciphertext)
    err = (½ − y) + a1·z + a3·z·z²            2 levels (degree-3 sigmoid, as in scoring)
    g_j = Σ_slots err ⊙ x̃_j                   1 level, x̃_j = (lr/n)·x_j encrypted by the owner
    w_j ← w_j − g_j

That is 4 levels per step; the toy linear regression needs 2 (no sigmoid). TenSEAL has no
bootstrapping, so when the levels run out the data owner *refreshes* the weight
ciphertexts (decrypt and re-encrypt the weights only — the model it will receive anyway —
a stand-in for bootstrapping). Parameters: N=8192, moduli [49, 30, 30, 30, 30, 49]
(218 bits, the 128-bit maximum for N=8192), scale 2^30: four levels, so one logistic step
or two linear-regression steps between refreshes; Galois keys only for the log2(n)
rotations of the slot sum.

TenSEAL and scikit-learn are imported inside the functions that use them: both are heavy, and
`sahayak` imports this module (through its scoring commands) on every start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.scoring.dataset import generate
from privacy import ckks

TRAIN_PARAMS = ckks.CkksParams("training", 8192, (49, 30, 30, 30, 30, 49), 30, relin_keys=True)
LEVELS_PER_STEP = {"logistic": 4, "linear": 2}


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass
class EncryptedDataset:
    """What the trainer receives: ciphertexts only, plus the public context bytes."""

    public_context: bytes
    columns: list[bytes]  # x_j (with a leading column of ones for the bias)
    scaled_columns: list[bytes]  # (lr / n) · x_j
    target: bytes  # ½ − y (logistic) or −y (linear)
    n: int


class DataOwner:
    """Bank side: secret key, encryption of the training set, weight refreshes, final decryption."""

    def __init__(self, n: int) -> None:
        import tenseal as ts  # heavy: deferred (module docstring)

        self.n = n
        self.period = _pow2_at_least(n)
        if self.period > TRAIN_PARAMS.slot_count:
            raise ValueError(f"at most {TRAIN_PARAMS.slot_count} samples per ciphertext")
        steps = tuple(1 << i for i in range(self.period.bit_length() - 1))
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, TRAIN_PARAMS.poly_modulus_degree,
                         coeff_mod_bit_sizes=list(TRAIN_PARAMS.coeff_mod_bit_sizes),
                         encryption_type=ts.ENCRYPTION_TYPE.SYMMETRIC, n_threads=1)
        ctx.global_scale = 2.0 ** TRAIN_PARAMS.scale_bits
        ctx.generate_relin_keys()
        full = ckks.parse_context_proto(ctx.serialize(save_secret_key=True, save_galois_keys=False))
        public = ckks.parse_context_proto(ctx.serialize(save_public_key=False, save_secret_key=False,
                                                        save_galois_keys=False, save_relin_keys=True))
        if steps:
            public.public_context.galois_keys = ckks._galois_keys_for_steps(
                full.encryption_parameters, full.private_context.secret_key, steps,
                TRAIN_PARAMS.poly_modulus_degree)
        public.ClearField("private_context")
        self.ctx = ctx
        self.public_bytes = public.SerializeToString()
        self.refreshes = 0

    def _enc(self, values: np.ndarray) -> bytes:
        import tenseal as ts  # heavy: deferred (module docstring)

        padded = np.zeros(self.period)  # zero-padded samples contribute nothing to the sums
        padded[: len(values)] = values
        return ts.ckks_vector(self.ctx, padded.tolist()).serialize()

    def encrypt(self, X: np.ndarray, y: np.ndarray, lr: float, kind: str) -> EncryptedDataset:
        Xb = np.column_stack([np.ones(len(X)), X])
        mask = np.zeros(self.period)
        mask[: len(X)] = 1.0
        target = (0.5 - y) if kind == "logistic" else -y
        return EncryptedDataset(
            public_context=self.public_bytes,
            columns=[self._enc(Xb[:, j]) for j in range(Xb.shape[1])],
            scaled_columns=[self._enc(Xb[:, j] * lr / len(X)) for j in range(Xb.shape[1])],
            # Padded slots must have zero error: for logistic, err = ½ + … on a zero row, so the
            # target there is −½ (cancels the ½) — x̃ is zero there anyway, so this is belt and braces.
            target=self._enc(np.where(mask[: len(X)] > 0, target, 0.0)),
            n=len(X),
        )

    def encrypt_weights(self, w: np.ndarray) -> list[bytes]:
        return [self._enc(np.full(self.period, v)) for v in w]

    def refresh(self, weights: list[bytes]) -> list[bytes]:
        """Decrypt and re-encrypt the weight ciphertexts (the bootstrapping stand-in)."""
        self.refreshes += 1
        return self.encrypt_weights(self.decrypt_weights(weights))

    def decrypt_weights(self, weights: list[bytes]) -> np.ndarray:
        import tenseal as ts  # heavy: deferred (module docstring)

        return np.array([ts.ckks_vector_from(self.ctx, w).decrypt()[0] for w in weights])


class EncryptedTrainer:
    """Server side: gradient descent on ciphertexts with a public context (no secret key)."""

    def __init__(self, data: EncryptedDataset, kind: str) -> None:
        import tenseal as ts  # heavy: deferred (module docstring)

        self.ctx = ts.context_from(data.public_context, n_threads=1)
        assert not self.ctx.has_secret_key()
        self.kind = kind
        self.size = _pow2_at_least(data.n)
        self.data = data
        a0, a1, _, a3 = ckks.sigmoid_poly_coefficients()
        self.a1, self.a3 = a1, a3

    def step(self, weights: list[bytes]) -> list[bytes]:
        """One full-batch gradient step on encrypted weights; returns encrypted weights."""
        import tenseal as ts  # heavy: deferred (module docstring)

        w = [ts.ckks_vector_from(self.ctx, b) for b in weights]
        # TenSEAL mod-switches operands in place when their levels differ (and cannot copy
        # without a secret key), so the data is loaded fresh, at the top level, every step.
        d = self.data
        x = [ts.ckks_vector_from(self.ctx, c) for c in d.columns]
        xs_all = [ts.ckks_vector_from(self.ctx, c) for c in d.scaled_columns]
        target = ts.ckks_vector_from(self.ctx, d.target)
        z = None
        for wj, xj in zip(w, x):
            term = wj * xj
            z = term if z is None else z + term
        if self.kind == "logistic":
            err = z * self.a1
            err = err + (z * self.a3) * z.square()
            err = err + target
        else:
            err = z + target
        new = []
        for wj, xs in zip(w, xs_all):
            # The slot sum leaves the total in every slot; relabel it as a full-size vector.
            g = ts.ckks_vector_from(self.ctx, ckks.with_logical_size((err * xs).sum().serialize(), self.size))
            new.append((wj - g).serialize())
        return new


def _plain_gd(X: np.ndarray, y: np.ndarray, lr: float, epochs: int, kind: str, poly: bool = True) -> np.ndarray:
    """The same algorithm in plaintext (same polynomial sigmoid unless ``poly`` is False)."""
    Xb = np.column_stack([np.ones(len(X)), X])
    w = np.zeros(Xb.shape[1])
    for _ in range(epochs):
        z = Xb @ w
        if kind == "logistic":
            p = (np.polynomial.polynomial.polyval(z, ckks.sigmoid_poly_coefficients()) if poly
                 else ckks.sigmoid(z))
        else:
            p = z
        w = w - lr / len(X) * Xb.T @ (p - y)
    return w


def train_encrypted(X: np.ndarray, y: np.ndarray, kind: str = "logistic", lr: float = 1.0,
                    epochs: int = 5) -> dict[str, Any]:
    """Train on encrypted data; returns final weights, refresh count and timings."""
    t0 = time.perf_counter()
    owner = DataOwner(len(X))
    data = owner.encrypt(X, y, lr, kind)
    t1 = time.perf_counter()
    trainer = EncryptedTrainer(data, kind)
    weights = owner.encrypt_weights(np.zeros(X.shape[1] + 1))
    per_refresh = TRAIN_PARAMS.depth // LEVELS_PER_STEP[kind]
    step_s = []
    for epoch in range(epochs):
        if epoch and epoch % per_refresh == 0:
            weights = owner.refresh(weights)
        t = time.perf_counter()
        weights = trainer.step(weights)
        step_s.append(time.perf_counter() - t)
    w = owner.decrypt_weights(weights)
    return {"weights": w, "refreshes": owner.refreshes, "steps_per_refresh": per_refresh,
            "setup_s": round(t1 - t0, 3), "step_s_mean": round(float(np.mean(step_s)), 3),
            "context_bytes": len(owner.public_bytes),
            "request_bytes": sum(len(c) for c in data.columns + data.scaled_columns) + len(data.target)}


def _accuracy(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(((np.column_stack([np.ones(len(X)), X]) @ w) >= 0) == (y == 1)))


def logistic_comparison(X: np.ndarray, y: np.ndarray, Xte: np.ndarray, yte: np.ndarray, lr: float = 1.0,
                        epochs: int = 5) -> dict[str, Any]:
    """Encrypted vs plaintext training of the same logistic regression, evaluated on held-out data."""
    from sklearn.linear_model import LogisticRegression  # heavy: deferred (module docstring)

    enc = train_encrypted(X, y, "logistic", lr, epochs)
    plain_poly = _plain_gd(X, y, lr, epochs, "logistic", poly=True)
    plain_exact = _plain_gd(X, y, lr, epochs, "logistic", poly=False)
    skl = LogisticRegression(max_iter=1000).fit(X, y)
    w_skl = np.concatenate([skl.intercept_, skl.coef_[0]])
    return {
        "n_train": int(len(X)), "n_test": int(len(Xte)), "features": int(X.shape[1]), "epochs": epochs, "lr": lr,
        "max_abs_weight_diff_vs_plain_same_algorithm": float(np.max(np.abs(enc["weights"] - plain_poly))),
        "test_accuracy": {"encrypted": _accuracy(enc["weights"], Xte, yte),
                          "plaintext_poly_sigmoid": _accuracy(plain_poly, Xte, yte),
                          "plaintext_exact_sigmoid": _accuracy(plain_exact, Xte, yte),
                          "sklearn_converged": _accuracy(w_skl, Xte, yte)},
        "refreshes": enc["refreshes"], "steps_per_refresh": enc["steps_per_refresh"],
        "step_s_mean": enc["step_s_mean"], "setup_s": enc["setup_s"], "context_bytes": enc["context_bytes"],
        "weights_decrypted_between_steps_only_for_refresh": True, "gradients_decrypted": False,
    }


def linear_toy(n: int = 64, epochs: int = 10, lr: float = 1.5, seed: int = 0) -> dict[str, Any]:
    """The seed's toy linear regression (y = 3x + 2 + noise), encrypted vs plaintext GD vs closed form."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1))
    y = 3.0 * x[:, 0] + 2.0 + rng.normal(0, 0.1, n)
    enc = train_encrypted(x, y, "linear", lr, epochs)
    plain = _plain_gd(x, y, lr, epochs, "linear")
    closed = np.linalg.lstsq(np.column_stack([np.ones(n), x]), y, rcond=None)[0]
    return {"n": n, "epochs": epochs, "lr": lr, "true": [2.0, 3.0],
            "encrypted": [round(float(v), 5) for v in enc["weights"]],
            "plaintext_gd": [round(float(v), 5) for v in plain],
            "closed_form": [round(float(v), 5) for v in closed],
            "max_abs_diff_vs_plaintext_gd": float(np.max(np.abs(enc["weights"] - plain))),
            "refreshes": enc["refreshes"], "steps_per_refresh": enc["steps_per_refresh"],
            "step_s_mean": enc["step_s_mean"]}


def loan_logistic(n: int = 256, epochs: int = 6, lr: float = 1.0) -> dict[str, Any]:
    """Encrypted training on a sample of the synthetic loan data (standardised)."""
    ds = generate(n + 2000, seed=99)
    mean, std = ds.X[:n].mean(0), ds.X[:n].std(0) + 1e-9
    Z = (ds.X - mean) / std
    return logistic_comparison(Z[:n], ds.y[:n].astype(float), Z[n:], ds.y[n:].astype(float), lr, epochs)

