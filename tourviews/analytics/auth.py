"""Who is asking: organization tokens, admin tokens, and the local operator.

Tokens are looked up by their SHA-256 and compared in constant time. The local
operator is the CLI on the machine that holds the instance secret: it signs a
timestamp with a key derived from that secret, so a running server can be driven
by ``tourviews`` commands without any token stored in plaintext.
"""

from __future__ import annotations

import hashlib
import hmac

from tourviews.storage.clock import Clock
from tourviews.storage.registry import Principal, Registry

LOCAL_PREFIX = "local."
LOCAL_MAX_SKEW = 300  # seconds a local credential stays valid
LOCAL_OPERATOR = Principal(org="", admin=True)


def _signature(key: bytes, stamp: str) -> str:
    return hmac.new(key, stamp.encode(), hashlib.sha256).hexdigest()


def local_credential(key: bytes, now: float) -> str:
    """A short-lived bearer credential of the local operator."""
    stamp = str(int(now))
    return f"{LOCAL_PREFIX}{stamp}.{_signature(key, stamp)}"


class Authenticator:
    def __init__(self, registry: Registry, control_key: bytes, clock: Clock) -> None:
        self._registry = registry
        self._control_key = control_key
        self._clock = clock

    def principal(self, authorization: str | None) -> Principal | None:
        """The principal behind an ``Authorization: Bearer ...`` header, or None."""
        if not authorization:
            return None
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return None
        if credential.startswith(LOCAL_PREFIX):
            return self._local(credential[len(LOCAL_PREFIX) :])
        return self._registry.authenticate(credential)

    def _local(self, signed: str) -> Principal | None:
        stamp, _, signature = signed.partition(".")
        # ASCII digits, few: "²" is a digit to str.isdigit, and a huge int is no float.
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            return None
        if abs(self._clock.now().timestamp() - int(stamp)) > LOCAL_MAX_SKEW:
            return None
        expected = _signature(self._control_key, stamp)
        return LOCAL_OPERATOR if hmac.compare_digest(signature, expected) else None
