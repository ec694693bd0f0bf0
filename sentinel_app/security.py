"""Secrets at rest: argon2 password hashes and SHA-256 hashes of high-entropy tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash (False for a missing hash)."""
    if not password_hash:
        # Spend comparable time so a missing account is not revealed by timing.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    """SHA-256 of a random token; tokens carry 256 bits, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(kind: str) -> str:
    """A random bearer token such as ``sk_…`` (API key) or ``it_…`` (integration)."""
    return f"{kind}_{secrets.token_urlsafe(32)}"


def derived_token(secret_key: str, kind: str, purpose: str) -> str:
    """A token derived from the server secret, stable across runs (used for demo data)."""
    digest = hmac.new(secret_key.encode(), f"{kind}:{purpose}".encode(), hashlib.sha256).digest()
    return f"{kind}_{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


def token_prefix(token: str) -> str:
    """The non-secret start of a token, shown in lists to tell keys apart."""
    return token[:10]


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(a.encode(), b.encode())


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(plain: str, *, secret_key: str | None = None) -> str:
    """Encrypt a secret that must be recoverable (HMAC keys), with a key derived from the server key."""
    return _fernet(secret_key or _server_key()).encrypt(plain.encode()).decode()


def decrypt_secret(token: str, *, what: str, secret_key: str | None = None) -> str:
    """Decrypt what `encrypt_secret` produced; a clear error names `what` when the server key changed."""
    try:
        return _fernet(secret_key or _server_key()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise RuntimeError(f"{what} cannot be decrypted: was SENTINEL_SECRET_KEY changed?") from None


def _server_key() -> str:
    from sentinel_app.settings import get_settings

    return get_settings().resolved_secret_key()
