"""The newsletter pages: subscribe, confirm, manage preferences and unsubscribe.

`routes(store, settings)` returns Starlette routes under `/newsletter`, which the web app of
`noticeboard serve` includes. Pages are rendered on the server and need no JavaScript.

- Forms carry a CSRF token: a random value in a cookie and the same value signed in a hidden
  field (a signed double-submit token). The unsubscribe POST is exempt, because mailbox providers
  send the RFC 8058 one-click request without cookies; the signed link itself authorises it.
- Subscription requests are rate-limited per normalised address and per client address, counted
  in the database so that several server processes share the counts.
- A GET on a confirm or unsubscribe link only shows a page with a button, because link scanners
  fetch URLs in mail. The POST does the work.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers.newsletter import notify
from publishers.newsletter.i18n import environment
from publishers.newsletter.sender import SmtpSender
from publishers.newsletter.subscribers import (
    ACTIVE,
    PENDING,
    InvalidAddressError,
    Preferences,
    confirm,
    find_by_key,
    normalise_address,
    sign_up,
    unsubscribe,
    update_preferences,
)
from publishers.newsletter.tables import Subscriber, SubscriptionRequest
from publishers.newsletter.tokens import CONFIRM, CSRF, MANAGE, UNSUBSCRIBE, TokenError, TokenSigner
from publishers.newsletter.vocabulary import (
    FREQUENCIES,
    LANGUAGES,
    PreferenceError,
    best_language,
    offered_regions,
    topics,
)

logger = logging.getLogger(__name__)

PREFIX = "/newsletter"
CSRF_COOKIE = "noticeboard_csrf"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class RateLimits:
    """Subscription requests allowed per address and per client within `window`."""

    per_address: int = 3
    per_client: int = 10
    window: timedelta = timedelta(hours=1)


def routes(
    store: Store,
    settings: Settings,
    *,
    limits: RateLimits | None = None,
    sender_factory: Callable[[], SmtpSender] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> list[BaseRoute]:
    """Return the newsletter routes; `sender_factory` and `clock` exist for tests."""
    pages = NewsletterPages(
        store=store,
        settings=settings,
        signer=TokenSigner.from_settings(settings),
        limits=limits or RateLimits(),
        sender_factory=sender_factory or (lambda: SmtpSender(settings)),
        clock=clock or (lambda: datetime.now(UTC)),
    )
    return [
        Route(f"{PREFIX}/subscribe", pages.subscribe_form, methods=["GET"]),
        Route(f"{PREFIX}/subscribe", pages.subscribe, methods=["POST"]),
        Route(f"{PREFIX}/confirm/{{token}}", pages.confirm_form, methods=["GET"]),
        Route(f"{PREFIX}/confirm/{{token}}", pages.confirm, methods=["POST"]),
        Route(f"{PREFIX}/preferences/{{token}}", pages.preferences_form, methods=["GET"]),
        Route(f"{PREFIX}/preferences/{{token}}", pages.save_preferences, methods=["POST"]),
        Route(f"{PREFIX}/unsubscribe/{{token}}", pages.unsubscribe_form, methods=["GET"]),
        Route(f"{PREFIX}/unsubscribe/{{token}}", pages.unsubscribe, methods=["POST"]),
    ]


@dataclass
class NewsletterPages:
    """The endpoints, sharing the store, settings and token signer."""

    store: Store
    settings: Settings
    signer: TokenSigner
    limits: RateLimits
    sender_factory: Callable[[], SmtpSender]
    clock: Callable[[], datetime]

    # Subscribe.

    async def subscribe_form(self, request: Request) -> Response:
        language = _request_language(request)
        return self._page(
            request, language, "subscribe.html", {"preferences": Preferences(language)}
        )

    async def subscribe(self, request: Request) -> Response:
        form = await request.form()
        language = _pick_language(str(form.get("language", "")), request)
        if not self._csrf_valid(request, form):
            return self._csrf_failed(request, language)

        values = _preference_values(form, language)
        try:
            preferences = Preferences.checked(**values)
            address = normalise_address(str(form.get("email", "")))
        except (InvalidAddressError, PreferenceError) as error:
            # The exception text is English, so the page shows a catalogue message instead.
            invalid = "address" if isinstance(error, InvalidAddressError) else "choice"
            logger.info("subscribe rejected reason=invalid-%s", invalid)
            context = {
                "preferences": _unchecked_preferences(values),
                "invalid": invalid,
                "email": form.get("email", ""),
            }
            return self._page(request, language, "subscribe.html", context, status_code=422)

        client = request.client.host if request.client else "unknown"
        retry_after = await run_in_threadpool(self._rate_limited, address, client)
        if retry_after is not None:
            response = self._page(request, language, "limited.html", {}, status_code=429)
            response.headers["Retry-After"] = str(retry_after)
            return response

        delivered = await run_in_threadpool(self._sign_up_and_mail, address, preferences)
        if not delivered:
            return self._page(request, language, "mail_failed.html", {}, status_code=503)
        return self._page(request, language, "check_inbox.html", {})

    def _sign_up_and_mail(self, address: str, preferences: Preferences) -> bool:
        now = self.clock()
        with self.store.session() as session:
            result = sign_up(session, address, preferences, now=now)
            subscriber = result.subscriber
            session.expunge(subscriber)
        if subscriber.status == PENDING:
            report = notify.send_confirmation(
                self.store, self.settings, subscriber, now=now, sender=self.sender_factory()
            )
        elif subscriber.status == ACTIVE:
            report = notify.send_manage_link(
                self.store, self.settings, subscriber, now=now, sender=self.sender_factory()
            )
        else:
            # A suspended address gets no mail; the page does not tell strangers so.
            return True
        return report.sent > 0

    def _rate_limited(self, address: str, client: str) -> int | None:
        """Record the request; return seconds to wait when a limit is already reached."""
        now = self.clock()
        since = now - self.limits.window
        keys = {
            "address": (self.signer.keyed_hash("address", address), self.limits.per_address),
            "client": (self.signer.keyed_hash("client", client), self.limits.per_client),
        }
        with self.store.session() as session:
            session.execute(
                delete(SubscriptionRequest).where(SubscriptionRequest.created_at < since)
            )
            for scope, (key_hash, limit) in keys.items():
                count = session.scalar(
                    select(func.count()).where(
                        SubscriptionRequest.scope == scope,
                        SubscriptionRequest.key_hash == key_hash,
                        SubscriptionRequest.created_at >= since,
                    )
                )
                if (count or 0) >= limit:
                    logger.warning("subscribe rate limited scope=%s limit=%d", scope, limit)
                    return int(self.limits.window.total_seconds())
            for scope, (key_hash, _) in keys.items():
                session.add(SubscriptionRequest(scope=scope, key_hash=key_hash, created_at=now))
        return None

    # Confirm.

    async def confirm_form(self, request: Request) -> Response:
        subscriber = await run_in_threadpool(self._subscriber_from, CONFIRM, request)
        if subscriber is None:
            return self._invalid_link(request)
        language = _request_language(request, subscriber.language)
        done = subscriber.status != PENDING
        return self._page(
            request, language, "confirm.html", {"done": done, "subscriber": subscriber}
        )

    async def confirm(self, request: Request) -> Response:
        form = await request.form()
        subscriber = await run_in_threadpool(self._subscriber_from, CONFIRM, request)
        if subscriber is None:
            return self._invalid_link(request)
        language = _request_language(request, subscriber.language)
        if not self._csrf_valid(request, form):
            return self._csrf_failed(request, language)
        await run_in_threadpool(
            self._update, subscriber.key, lambda s: confirm(s, now=self.clock())
        )
        manage = self._manage_url(subscriber)
        return self._page(request, language, "confirmed.html", {"manage_url": manage})

    # Preferences.

    async def preferences_form(self, request: Request) -> Response:
        subscriber = await run_in_threadpool(self._subscriber_from, MANAGE, request)
        if subscriber is None:
            return self._invalid_link(request)
        language = _request_language(request, subscriber.language)
        return self._page(
            request, language, "preferences.html", self._preferences_context(subscriber)
        )

    async def save_preferences(self, request: Request) -> Response:
        form = await request.form()
        subscriber = await run_in_threadpool(self._subscriber_from, MANAGE, request)
        if subscriber is None:
            return self._invalid_link(request)
        language = _request_language(request, subscriber.language)
        if not self._csrf_valid(request, form):
            return self._csrf_failed(request, language)

        values = _preference_values(form, subscriber.language)
        try:
            preferences = Preferences.checked(**values)
        except PreferenceError:
            logger.info("preferences rejected subscriber=%s reason=invalid-choice", subscriber.id)
            context = self._preferences_context(subscriber) | {
                "preferences": _unchecked_preferences(values),
                "invalid": "choice",
            }
            return self._page(request, language, "preferences.html", context, status_code=422)

        updated = await run_in_threadpool(
            self._update, subscriber.key, lambda s: update_preferences(s, preferences)
        )
        assert updated is not None
        context = self._preferences_context(updated) | {"saved": True}
        return self._page(request, preferences.language, "preferences.html", context)

    def _preferences_context(self, subscriber: Subscriber) -> dict[str, Any]:
        preferences = Preferences(
            language=subscriber.language,
            regions=tuple(subscriber.regions),
            topics=tuple(subscriber.topics),
            frequency=subscriber.frequency,
        )
        return {
            "preferences": preferences,
            "subscriber": subscriber,
            "unsubscribe_url": self._unsubscribe_url(subscriber),
        }

    # Unsubscribe.

    async def unsubscribe_form(self, request: Request) -> Response:
        subscriber = await run_in_threadpool(self._subscriber_from, UNSUBSCRIBE, request)
        if subscriber is None:
            return self._invalid_link(request)
        language = _request_language(request, subscriber.language)
        done = subscriber.status != ACTIVE and subscriber.status != PENDING
        return self._page(request, language, "unsubscribe.html", {"done": done})

    async def unsubscribe(self, request: Request) -> Response:
        """Unsubscribe at once: the RFC 8058 one-click POST and the page's button both land here.

        A valid link of a subscriber removed since then also gets the success page, because that
        address gets no more mail either way and a mailbox provider expects a 2xx reply.
        """
        key = self._key_from(UNSUBSCRIBE, request)
        if key is None:
            return self._invalid_link(request)
        subscriber = await run_in_threadpool(
            self._update, key, lambda s: unsubscribe(s, now=self.clock())
        )
        language = _request_language(request, subscriber.language if subscriber else None)
        context = {"subscribe_url": f"{PREFIX}/subscribe?lang={language}"}
        return self._page(request, language, "unsubscribed.html", context)

    # Shared helpers.

    def _key_from(self, purpose: str, request: Request) -> str | None:
        try:
            return self.signer.load(purpose, request.path_params["token"])
        except TokenError as error:
            logger.info("link rejected purpose=%s expired=%s", purpose, error.expired)
            return None

    def _subscriber_from(self, purpose: str, request: Request) -> Subscriber | None:
        key = self._key_from(purpose, request)
        if key is None:
            return None
        with self.store.session() as session:
            subscriber = find_by_key(session, key)
            if subscriber is not None:
                session.expunge(subscriber)
        return subscriber

    def _update(self, key: str, change: Callable[[Subscriber], object]) -> Subscriber | None:
        with self.store.session() as session:
            subscriber = find_by_key(session, key)
            if subscriber is None:
                return None
            change(subscriber)
            session.flush()
            session.expunge(subscriber)
        return subscriber

    def _manage_url(self, subscriber: Subscriber) -> str:
        return f"{PREFIX}/preferences/{self.signer.sign(MANAGE, subscriber.key)}"

    def _unsubscribe_url(self, subscriber: Subscriber) -> str:
        return f"{PREFIX}/unsubscribe/{self.signer.sign(UNSUBSCRIBE, subscriber.key)}"

    def _csrf_valid(self, request: Request, form: Mapping[str, Any]) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE)
        token = form.get(CSRF_FIELD)
        if not cookie or not isinstance(token, str):
            logger.info("csrf rejected reason=missing path=%s", request.url.path)
            return False
        try:
            signed_value = self.signer.load(CSRF, token)
        except TokenError as error:
            logger.info(
                "csrf rejected reason=%s path=%s",
                "expired" if error.expired else "invalid",
                request.url.path,
            )
            return False
        if not secrets.compare_digest(signed_value, cookie):
            logger.info("csrf rejected reason=mismatch path=%s", request.url.path)
            return False
        return True

    def _csrf_failed(self, request: Request, language: str) -> Response:
        return self._page(request, language, "csrf.html", {}, status_code=403)

    def _invalid_link(self, request: Request) -> Response:
        language = _request_language(request)
        subscribe_url = f"{PREFIX}/subscribe?lang={language}"
        return self._page(
            request,
            language,
            "invalid_link.html",
            {"subscribe_url": subscribe_url},
            status_code=404,
        )

    def _page(
        self,
        request: Request,
        language: str,
        template: str,
        context: dict[str, Any],
        *,
        status_code: int = 200,
    ) -> HTMLResponse:
        cookie = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        body = (
            environment(language, "web")
            .get_template(template)
            .render(
                request_path=request.url.path,
                csrf_field=CSRF_FIELD,
                csrf_token=self.signer.sign(CSRF, cookie),
                regions=offered_regions(),
                topics=topics(),
                frequencies=FREQUENCIES,
                **context,
            )
        )
        response = HTMLResponse(body, status_code=status_code)
        response.headers["Content-Language"] = language
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.set_cookie(
            CSRF_COOKIE,
            cookie,
            max_age=2 * 3600,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=self.settings.public_base_url.startswith("https://"),
        )
        return response


def _request_language(request: Request, fallback: str | None = None) -> str:
    chosen = request.query_params.get("lang", "")
    if chosen in LANGUAGES:
        return chosen
    return fallback or best_language(request.headers.get("accept-language"))


def _pick_language(value: str, request: Request) -> str:
    return value if value in LANGUAGES else _request_language(request)


def _unchecked_preferences(values: dict[str, Any]) -> Preferences:
    """Return a rejected form's choices unchecked, so the page shown again keeps what was ticked."""
    return Preferences(
        language=values["language"],
        regions=tuple(values["regions"]),
        topics=tuple(values["topics"]),
        frequency=values["frequency"],
    )


def _preference_values(form: Any, default_language: str) -> dict[str, Any]:
    return {
        "language": str(form.get("language") or default_language),
        "regions": [str(value) for value in form.getlist("regions")],
        "topics": [str(value) for value in form.getlist("topics")],
        "frequency": str(form.get("frequency") or "daily"),
    }
