"""Signed, expiring tokens for the links in newsletter mails and the CSRF form token.

Tokens are itsdangerous `URLSafeTimedSerializer` values signed with `settings.secret_key`. Each
purpose has its own salt, so a confirmation token cannot be replayed as an unsubscribe token.
They carry the subscriber's random public key, never the e-mail address.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from noticeboard.errors import ConfigError
from noticeboard.settings import Settings

CONFIRM = "confirm"
MANAGE = "manage"
UNSUBSCRIBE = "unsubscribe"
CSRF = "csrf"

# Maximum token ages in seconds. Unsubscribe links in old mails keep working for a year, because
# mailbox providers may use the List-Unsubscribe URL long after delivery.
MAX_AGE_SECONDS = {
    CONFIRM: 3 * 24 * 3600,
    MANAGE: 180 * 24 * 3600,
    UNSUBSCRIBE: 365 * 24 * 3600,
    CSRF: 2 * 3600,
}


class TokenError(ValueError):
    """A token is malformed, forged or expired (then `expired` is True)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class TokenSigner:
    """Signs and checks the tokens of one secret key."""

    secret_key: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenSigner:
        """Build a signer from `settings.secret_key`, which must be set."""
        if not settings.secret_key:
            raise ConfigError(
                "NOTICEBOARD_SECRET_KEY is missing; the newsletter signs its links with it, "
                "so set it to a long random value (for example `openssl rand -hex 32`)"
            )
        return cls(settings.secret_key)

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret_key, salt=f"noticeboard.newsletter.{purpose}")

    def sign(self, purpose: str, value: str) -> str:
        """Return a token for `value` that `load` accepts for the same purpose."""
        if purpose not in MAX_AGE_SECONDS:
            raise ValueError(
                f"unknown token purpose {purpose!r}; use one of {sorted(MAX_AGE_SECONDS)}"
            )
        token: str = self._serializer(purpose).dumps(value)
        return token

    def load(self, purpose: str, token: str) -> str:
        """Return the value inside `token`, or raise `TokenError` when it is invalid or expired."""
        try:
            value = self._serializer(purpose).loads(token, max_age=MAX_AGE_SECONDS[purpose])
        except SignatureExpired as error:
            raise TokenError(f"{purpose} token expired", expired=True) from error
        except BadSignature as error:
            raise TokenError(f"{purpose} token is invalid") from error
        if not isinstance(value, str):
            raise TokenError(f"{purpose} token is invalid: it contains no subscriber key")
        return value

    def keyed_hash(self, scope: str, value: str) -> str:
        """Return an HMAC-SHA256 of `value`, for counting requests without storing the value."""
        message = f"{scope}\0{value}".encode()
        return hmac.new(self.secret_key.encode(), message, hashlib.sha256).hexdigest()
