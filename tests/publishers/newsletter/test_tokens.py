"""Signed link tokens: expiry, purpose separation and forged values."""

from __future__ import annotations

import time

import pytest

from publishers.newsletter import tokens
from publishers.newsletter.tokens import (
    CONFIRM,
    MAX_AGE_SECONDS,
    UNSUBSCRIBE,
    TokenError,
    TokenSigner,
)

SIGNER = TokenSigner("test-secret-key-0123456789")


def test_token_round_trip() -> None:
    token = SIGNER.sign(CONFIRM, "subscriber-key")

    assert SIGNER.load(CONFIRM, token) == "subscriber-key"


def test_expired_token_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    signed_at = time.time() - MAX_AGE_SECONDS[CONFIRM] - 60
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: signed_at)
    token = SIGNER.sign(CONFIRM, "subscriber-key")
    monkeypatch.undo()

    with pytest.raises(TokenError) as caught:
        SIGNER.load(CONFIRM, token)

    assert caught.value.expired is True


def test_purpose_mismatch_rejected() -> None:
    token = SIGNER.sign(CONFIRM, "subscriber-key")

    with pytest.raises(TokenError) as caught:
        SIGNER.load(UNSUBSCRIBE, token)

    assert caught.value.expired is False


def test_other_secret_rejected() -> None:
    token = TokenSigner("another-secret-key-000000").sign(CONFIRM, "subscriber-key")

    with pytest.raises(TokenError):
        SIGNER.load(CONFIRM, token)


def test_unknown_purpose_raises() -> None:
    with pytest.raises(ValueError, match="unknown token purpose"):
        SIGNER.sign("reset", "subscriber-key")


def test_missing_secret_names_setting() -> None:
    from noticeboard.errors import ConfigError
    from noticeboard.settings import Settings

    with pytest.raises(ConfigError, match="NOTICEBOARD_SECRET_KEY"):
        tokens.TokenSigner.from_settings(Settings(secret_key=""))
