"""The instance secret: from the environment or a private key file, never weak."""

from __future__ import annotations

from pathlib import Path

import pytest

from tourviews.storage.errors import SecretError
from tourviews.storage.secret import SECRET_FILE, derive_key, load_secret


def test_first_use_creates_a_key_file_readable_by_its_owner_only(data_dir: Path) -> None:
    secret = load_secret(data_dir, environ={})
    assert len(secret) >= 32
    assert (data_dir / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    assert load_secret(data_dir, environ={}) == secret


def test_environment_secret_wins_over_the_file(data_dir: Path) -> None:
    value = "s" * 40
    assert load_secret(data_dir, environ={"TOURVIEWS_SECRET": value}) == value.encode()
    assert not (data_dir / SECRET_FILE).exists()


def test_short_environment_secret_is_refused(data_dir: Path) -> None:
    with pytest.raises(SecretError, match="at least 32"):
        load_secret(data_dir, environ={"TOURVIEWS_SECRET": "short"})


def test_key_file_readable_by_others_is_refused(data_dir: Path) -> None:
    load_secret(data_dir, environ={})
    (data_dir / SECRET_FILE).chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        load_secret(data_dir, environ={})


def test_commands_do_not_invent_a_secret(data_dir: Path) -> None:
    with pytest.raises(SecretError, match="TOURVIEWS_SECRET"):
        load_secret(data_dir, environ={}, create=False)


def test_derived_keys_differ_by_purpose() -> None:
    assert derive_key(b"x" * 32, "salts") != derive_key(b"x" * 32, "control")
    assert len(derive_key(b"x" * 32, "salts")) == 32
