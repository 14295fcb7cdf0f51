"""Signing keys: Ed25519 (default) and RSA-PSS/SHA-256, a keyring and rotation.

Layout under ``$SAHAYAK_HOME/keys/provenance/`` (folder 0700, files 0600):
``<key_id>.key`` (private key, PEM, never logged), ``keyring.json`` (every public key
ever used, with algorithm and validity, so old records stay verifiable after
rotation) and ``active`` (the key id new records are signed with).
``key_id`` is the first 16 hex digits of SHA-256 over the DER public key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from app.core.errors import SahayakError
from app.core.fsutil import write_atomic
from provenance.canonical import iso_utc, sha256_hex

ED25519 = "ed25519"
RSA_PSS = "rsa-pss"
ALGORITHMS = (ED25519, RSA_PSS)


def _normalise_alg(alg: str) -> str:
    a = alg.lower().replace("_", "-")
    if a in ("ed25519", "eddsa"):
        return ED25519
    if a in ("rsa-pss", "rsa", "rsa-pss-sha256", "ps256"):
        return RSA_PSS
    raise SahayakError(f"unknown signing algorithm '{alg}' (use ed25519 or rsa-pss)")


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (no window where it is world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def key_id_of(public_key: Any) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return sha256_hex(der)[:16]


def public_pem(public_key: Any) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_pem(pem: str | bytes) -> Any:
    return serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)


def alg_of_public(public_key: Any) -> str:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return ED25519
    if isinstance(public_key, rsa.RSAPublicKey):
        return RSA_PSS
    raise SahayakError(f"unsupported public key type {type(public_key).__name__}")


def _pss_sign() -> padding.PSS:
    # The seed's scheme: PSS with MGF1(SHA-256) and the maximum salt length.
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)


def _pss_verify() -> padding.PSS:
    # AUTO accepts any salt length, so envelopes from signers that used the digest
    # length (another common PSS choice) verify too.
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)


def verify_signature(public_key: Any, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 or RSA-PSS/SHA-256 signature of ``data``."""
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, _pss_verify(), hashes.SHA256())
        else:
            return False
        return True
    except InvalidSignature:
        return False


@dataclass
class Signer:
    """A private key able to sign, with its id and algorithm."""

    key_id: str
    alg: str
    private_key: Any

    def sign(self, data: bytes) -> bytes:
        if self.alg == ED25519:
            return self.private_key.sign(data)
        return self.private_key.sign(data, _pss_sign(), hashes.SHA256())

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()

    def __repr__(self) -> str:  # never show key material
        return f"Signer(key_id={self.key_id!r}, alg={self.alg!r})"


def generate_private(alg: str, rsa_bits: int = 2048) -> Any:
    alg = _normalise_alg(alg)
    if alg == ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)


class KeyRing:
    """The signing keys of one installation: the active signer and all public keys."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._public_cache: dict[str, Any] = {}

    # --- files --------------------------------------------------------------------
    @property
    def ring_path(self) -> Path:
        return self.folder / "keyring.json"

    def _ensure_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)

    def _read_ring(self) -> dict[str, Any]:
        if not self.ring_path.exists():
            return {"keys": {}}
        return json.loads(self.ring_path.read_text())

    def _write_ring(self, ring: dict[str, Any]) -> None:
        write_atomic(self.ring_path, json.dumps(ring, indent=2, sort_keys=True), durable=True)

    def exists(self) -> bool:
        return (self.folder / "active").exists()

    # --- operations ---------------------------------------------------------------
    def generate(self, alg: str = ED25519, rsa_bits: int = 2048) -> Signer:
        """Create a new key, add it to the ring and make it active (old keys stay for verifying)."""
        alg = _normalise_alg(alg)
        with self._lock:
            self._ensure_folder()
            priv = generate_private(alg, rsa_bits)
            kid = key_id_of(priv.public_key())
            pem = priv.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            write_private(self.folder / f"{kid}.key", pem)
            ring = self._read_ring()
            now = iso_utc()
            for info in ring["keys"].values():
                if info.get("retired_at") is None:
                    info["retired_at"] = now
            ring["keys"][kid] = {"alg": alg, "public_pem": public_pem(priv.public_key()), "created_at": now, "retired_at": None}
            self._write_ring(ring)
            write_private(self.folder / "active", kid.encode())
            return Signer(kid, alg, priv)

    def active(self, alg: str = ED25519, create: bool = True) -> Signer:
        """The active signer; generated on first use when ``create``."""
        if not self.exists():
            if not create:
                raise SahayakError(f"no provenance signing key under {self.folder}; run `sahayak provenance keygen`")
            return self.generate(alg)
        kid = (self.folder / "active").read_text().strip()
        path = self.folder / f"{kid}.key"
        try:
            priv = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError as exc:
            raise SahayakError(f"active signing key {kid} is missing from {self.folder}") from exc
        return Signer(kid, alg_of_public(priv.public_key()), priv)

    def public_keys(self) -> dict[str, Any]:
        """Every public key in the ring, by key id."""
        ring = self._read_ring()
        out = {}
        for kid, info in ring["keys"].items():
            if kid not in self._public_cache:
                self._public_cache[kid] = load_public_pem(info["public_pem"])
            out[kid] = self._public_cache[kid]
        return out

    def describe(self) -> list[dict[str, Any]]:
        """Key ids, algorithms and validity (no key material) for display."""
        ring = self._read_ring()
        active = (self.folder / "active").read_text().strip() if self.exists() else None
        return [
            {"key_id": k, "alg": v["alg"], "created_at": v["created_at"], "retired_at": v["retired_at"], "active": k == active}
            for k, v in sorted(ring["keys"].items(), key=lambda kv: kv[1]["created_at"])
        ]


def keyring_for(settings: Any) -> KeyRing:
    return KeyRing(Path(settings.keys_dir) / "provenance")


def pseudonym_key(settings: Any) -> bytes:
    """The HMAC key that turns session and user ids into stable pseudonyms (0600, created once)."""
    folder = Path(settings.keys_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pseudonym.key"
    if not path.exists():
        write_private(path, os.urandom(32))
    return path.read_bytes()


def pseudonym_with(key: bytes, value: str | None, prefix: str) -> str | None:
    """``prefix`` + the keyed HMAC-SHA256 of ``value`` (20 hex digits); None stays None."""
    if value is None:
        return None
    return prefix + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:20]


def pseudonym(settings: Any, value: str | None, prefix: str) -> str | None:
    """The installation's keyed HMAC pseudonym of a session (``s_``) or user (``u_``) id."""
    if value is None:
        return None
    return pseudonym_with(pseudonym_key(settings), value, prefix)
