"""The instance secret, root of every key the service derives.

It comes from ``TOURVIEWS_SECRET`` or, when that is unset, from ``secret.key`` in
the data directory, created at random on first use and readable by its owner only.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tourviews.storage.errors import SecretError

SECRET_FILE = "secret.key"
ENV_VAR = "TOURVIEWS_SECRET"
MIN_LENGTH = 32


def load_secret(
    data_dir: Path, environ: dict[str, str] | None = None, create: bool = True
) -> bytes:
    """The instance secret: from the environment, else the data directory's key file."""
    env = os.environ if environ is None else environ
    if value := env.get(ENV_VAR):
        if len(value) < MIN_LENGTH:
            raise SecretError(f"{ENV_VAR} must be at least {MIN_LENGTH} characters long")
        return value.encode()
    path = data_dir / SECRET_FILE
    if not path.exists():
        if not create:
            raise SecretError(f"no instance secret: set {ENV_VAR} as for the server, or --data")
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    if path.stat().st_mode & 0o077:
        raise SecretError(f"{path} must be readable by its owner only (chmod 600 {path})")
    value = path.read_text().strip()
    if len(value) < MIN_LENGTH:
        raise SecretError(f"{path} holds fewer than {MIN_LENGTH} characters")
    return value.encode()


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived with HKDF-SHA256 from the instance secret."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"tourviews {purpose}".encode()
    ).derive(secret)
