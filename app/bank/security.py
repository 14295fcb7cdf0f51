"""Password and OTP hashing (salted, constant-time comparisons)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

# scrypt cost: ~16 MiB and a few tens of milliseconds per hash on one core.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$<salt hex>$<hash hex>`` with a fresh 16-byte salt per call."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Check ``password`` against a :func:`hash_password` string in constant time."""
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p), dklen=len(digest_hex) // 2
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


# Verified against when the username does not exist, so that unknown users cost the same time.
_DUMMY_HASH = hash_password("not-a-real-password", salt=b"\x00" * 16)


def burn_password_check(password: str) -> None:
    """Spend the time of a real password check (unknown username)."""
    verify_password(password, _DUMMY_HASH)


def new_otp_code() -> str:
    """A uniformly random 6-digit code."""
    return f"{secrets.randbelow(10**6):06d}"


def hash_otp(code: str, challenge_id: str) -> str:
    """Salted keyed hash of an OTP code; the challenge id is mixed in so hashes cannot be swapped."""
    salt = secrets.token_bytes(16)
    mac = hmac.new(salt, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()
    return f"{salt.hex()}${mac}"


def verify_otp_hash(code: str, challenge_id: str, stored: str) -> bool:
    """Constant-time check of an OTP code against :func:`hash_otp`'s output."""
    try:
        salt_hex, mac = stored.split("$")
        expected = hmac.new(bytes.fromhex(salt_hex), f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()
    except ValueError:
        return False
    return hmac.compare_digest(expected, mac)
