"""Social channels against fake Mastodon, Discourse and webhook servers on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Delivery, Notice
from noticeboard.views import iter_notice_views
from publishers import ledger
from publishers.jsonfeed import FeedContext
from publishers.mastodon import compose_status
from publishers.social import PublishReport, outgoing, publish_pending
from tests.publishers.conftest import new_version
from tests.servers.platforms import DiscourseServer, MastodonServer, WebhookReceiver

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def mastodon() -> Iterator[MastodonServer]:
    with MastodonServer(token="secret-token") as server:
        yield server


@pytest.fixture
def discourse() -> Iterator[DiscourseServer]:
    with DiscourseServer(api_key="secret-key") as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret="shared-secret") as server:
        yield server


@pytest.fixture
def channel_settings(
    settings: Settings,
    mastodon: MastodonServer,
    discourse: DiscourseServer,
    receiver: WebhookReceiver,
) -> Settings:
    return settings.replace(
        publishers=("mastodon", "discourse", "webhook"),
        mastodon_url=mastodon.url,
        mastodon_token="secret-token",
        mastodon_visibility="unlisted",
        mastodon_spoiler_text="Official notice",
        discourse_url=discourse.url,
        discourse_api_key="secret-key",
        discourse_categories="FI=5,SE=6",
        webhook_url=receiver.url + "/hook",
        webhook_secret="shared-secret",
        read_timeout=5.0,
    )


def _only(settings: Settings, name: str) -> Settings:
    return settings.replace(publishers=(name,))


def _rows(store: Store) -> list[Delivery]:
    with store.session() as session:
        return list(
            session.scalars(
                select(Delivery).order_by(Delivery.channel, Delivery.notice_id, Delivery.version)
            )
        )


def _publish(store: Store, settings: Settings, when: datetime = NOW) -> PublishReport:
    return publish_pending(store, settings, now=when)


def test_all_channels_post(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    discourse: DiscourseServer,
    receiver: WebhookReceiver,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1", regions=("FI-18",), topics=("roadworks",))
    make_notice("n2", regions=("SE",), topics=("elections",), language="sv", minutes=1)

    report = _publish(store, channel_settings)

    assert report.channels["mastodon"].sent == 2
    assert report.channels["discourse"].sent == 2
    assert report.channels["webhook"].sent == 2
    assert len(mastodon.statuses) == 2
    assert len(discourse.topics) == 2
    assert len(receiver.accepted) == 2
    assert {row.status for row in _rows(store)} == {"sent"}


def test_mastodon_status_fields(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1", regions=("FI-18",), topics=("road-works",))
    _publish(store, _only(channel_settings, "mastodon"))

    status = next(iter(mastodon.statuses.values()))
    assert status["language"] == "fi"
    assert status["visibility"] == "unlisted"
    assert status["spoiler_text"] == "Official notice"
    assert "https://city.example.fi/tiedotteet/n1" in status["status"]
    assert "#FI_18" in status["status"]
    assert "#RoadWorks" in status["status"]


def test_status_within_500_chars(
    store: Store, settings: Settings, make_notice: Callable[..., str]
) -> None:
    make_notice("n1", title="Pitkä " * 200)
    with store.session() as session:
        view = next(iter_notice_views(session))
    text = compose_status(outgoing(view, FeedContext.create("https://x.example")), "CW")
    assert len(text) - len("https://city.example.fi/tiedotteet/n1") + 23 <= 500 - len("CW")


def test_rerun_posts_nothing(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    discourse: DiscourseServer,
    receiver: WebhookReceiver,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    _publish(store, channel_settings)
    requests_before = len(mastodon.received) + len(discourse.received) + len(receiver.received)

    report = _publish(store, channel_settings, NOW + timedelta(hours=1))

    assert all(channel.sent == 0 for channel in report.channels.values())
    assert (
        len(mastodon.received) + len(discourse.received) + len(receiver.received) == requests_before
    )


def test_new_version_edits(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    discourse: DiscourseServer,
    receiver: WebhookReceiver,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    _publish(store, channel_settings)
    new_version(store, "n1", "Tiedote korjattu", NOW)

    report = _publish(store, channel_settings, NOW + timedelta(minutes=5))

    status = next(iter(mastodon.statuses.values()))
    topic = next(iter(discourse.topics.values()))
    post = discourse.posts[topic["first_post_id"]]
    assert report.channels["mastodon"].edited == 1
    assert len(mastodon.statuses) == 1
    assert status["edits"] == 1
    assert "Tiedote korjattu" in status["status"]
    assert len(discourse.topics) == 1
    assert topic["title"] == "Tiedote korjattu"
    assert post["edits"] == 1
    assert [d["event"] for d in receiver.accepted.values()] == ["notice.created", "notice.updated"]


def test_discourse_category_and_tags(
    store: Store,
    channel_settings: Settings,
    discourse: DiscourseServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1", regions=("SE-AB",), topics=("elections", "public-transport"), language="sv")
    _publish(store, _only(channel_settings, "discourse"))

    topic = next(iter(discourse.topics.values()))
    assert topic["category_id"] == 6
    assert topic["tags"] == ["elections", "public-transport"]
    assert topic["external_id"] == "nb-n1"


def _crash_on_record(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("simulated crash after the post")

    monkeypatch.setattr(ledger, "record_sent", crash)


@pytest.mark.parametrize("channel", ["mastodon", "discourse", "webhook"])
def test_crash_reconciled_once(
    channel: str,
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    discourse: DiscourseServer,
    receiver: WebhookReceiver,
    make_notice: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_notice("n1")
    settings = _only(channel_settings, channel)
    with monkeypatch.context() as patch:
        _crash_on_record(patch)
        crashed = _publish(store, settings)
    assert crashed.channels[channel].error is not None
    assert _rows(store)[0].status == "intent"

    too_soon = _publish(store, settings, NOW + timedelta(minutes=1))
    later = _publish(store, settings, NOW + ledger.INTENT_STALE_AFTER + timedelta(minutes=1))

    assert too_soon.channels[channel].sent == 0
    assert later.channels[channel].sent == 1
    assert _rows(store)[0].status == "sent"
    assert len(mastodon.statuses) == (1 if channel == "mastodon" else 0)
    assert len(discourse.topics) == (1 if channel == "discourse" else 0)
    assert len(receiver.accepted) == (1 if channel == "webhook" else 0)


def test_mastodon_crash_found_without_key(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_notice("n1")
    settings = _only(channel_settings, "mastodon")
    with monkeypatch.context() as patch:
        _crash_on_record(patch)
        _publish(store, settings)
    mastodon.idempotency.clear()

    _publish(store, settings, NOW + timedelta(hours=2))

    assert len(mastodon.statuses) == 1
    assert _rows(store)[0].remote_id == next(iter(mastodon.statuses))


def test_crash_then_new_version(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_notice("n1")
    settings = _only(channel_settings, "mastodon")
    with monkeypatch.context() as patch:
        _crash_on_record(patch)
        _publish(store, settings)
    new_version(store, "n1", "Tiedote korjattu", NOW)

    _publish(store, settings, NOW + timedelta(hours=2))

    status = next(iter(mastodon.statuses.values()))
    assert len(mastodon.statuses) == 1
    assert "Tiedote korjattu" in status["status"]
    assert [row.status for row in _rows(store)] == ["superseded", "sent"]


def test_429_retry_after(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    make_notice("n2", minutes=1)
    settings = _only(channel_settings, "mastodon")
    mastodon.fail_next(429, headers={"Retry-After": "600"})

    first = _publish(store, settings)
    early = _publish(store, settings, NOW + timedelta(minutes=5))
    due = _publish(store, settings, NOW + timedelta(minutes=11))

    assert first.channels["mastodon"].failed == 1
    assert first.channels["mastodon"].paused_for == 600
    assert len(mastodon.received) >= 2
    assert early.channels["mastodon"].sent == 1
    assert due.channels["mastodon"].sent == 1
    assert len(mastodon.statuses) == 2


def test_429_next_attempt_time(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    mastodon.fail_next(429, headers={"Retry-After": "600"})

    _publish(store, _only(channel_settings, "mastodon"))

    row = _rows(store)[0]
    assert row.status == "failed"
    assert row.next_attempt_at == NOW + timedelta(seconds=600)
    assert "HTTP 429" in (row.last_error or "")


def test_rate_limit_header_pauses(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    make_notice("n2", minutes=1)
    mastodon.rate_limit_exhausted = True

    report = _publish(store, _only(channel_settings, "mastodon"))

    assert report.channels["mastodon"].sent == 1
    assert report.channels["mastodon"].paused_for == 120
    assert len(mastodon.statuses) == 1


def test_422_permanent(
    store: Store,
    channel_settings: Settings,
    discourse: DiscourseServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    settings = _only(channel_settings, "discourse")
    discourse.fail_next(422, body={"errors": ["Title is too short"]}, times=2)

    first = _publish(store, settings)
    again = _publish(store, settings, NOW + timedelta(days=2))

    row = _rows(store)[0]
    assert first.channels["discourse"].permanent == 1
    assert row.status == "permanent"
    assert "HTTP 422" in (row.last_error or "")
    assert again.channels["discourse"].sent == 0
    assert discourse.topics == {}


def test_server_error_retried_later(
    store: Store,
    channel_settings: Settings,
    receiver: WebhookReceiver,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    settings = _only(channel_settings, "webhook")
    receiver.fail_next(503)

    first = _publish(store, settings)
    second = _publish(store, settings, NOW + timedelta(minutes=2))

    assert first.channels["webhook"].failed == 1
    assert second.channels["webhook"].sent == 1
    assert _rows(store)[0].attempts == 2


def test_webhook_signature_checked(
    store: Store,
    channel_settings: Settings,
    receiver: WebhookReceiver,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    _publish(store, _only(channel_settings, "webhook"))

    request = receiver.received[0]
    delivered = next(iter(receiver.accepted.values()))
    assert receiver.rejected == 0
    assert request.headers["X-Noticeboard-Signature"].startswith("sha256=")
    assert delivered["item"]["id"] == "n1"
    assert json.loads(request.body)["_noticeboard"]["source"] == "fi-city"


def test_webhook_wrong_secret_permanent(
    store: Store,
    channel_settings: Settings,
    receiver: WebhookReceiver,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    report = _publish(store, _only(channel_settings, "webhook").replace(webhook_secret="wrong"))

    assert receiver.rejected == 1
    assert report.channels["webhook"].permanent == 1


def test_broken_channel_isolated(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    settings = channel_settings.replace(publishers=("discourse", "mastodon"), discourse_url="")

    report = _publish(store, settings)

    assert "NOTICEBOARD_DISCOURSE_URL" in (report.channels["discourse"].error or "")
    assert report.channels["mastodon"].sent == 1


def test_token_not_logged(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_notice("n1")
    mastodon.fail_next(500)
    caplog.set_level("DEBUG")

    _publish(store, channel_settings)

    assert "secret-token" not in caplog.text
    assert "secret-key" not in caplog.text
    assert "shared-secret" not in caplog.text


def test_withdrawn_not_posted(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1", withdrawn=True)
    make_notice("d1", duplicate_group="g")
    make_notice("d2", duplicate_group="g", minutes=1)

    _publish(store, _only(channel_settings, "mastodon"))

    assert [s["status"].split("\n")[0] for s in mastodon.statuses.values()] == ["Tiedote d1"]


def test_discourse_plain_text_escaped(
    store: Store,
    channel_settings: Settings,
    discourse: DiscourseServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1", body_html="", body_text="")
    with store.session() as session:
        session.get(Notice, "n1").summary_text = "Katu <script>alert(1)</script> & tori"
    _publish(store, _only(channel_settings, "discourse"))

    raw = next(iter(discourse.posts.values()))["raw"]
    assert "<script>" not in raw
    assert "Katu &lt;script&gt;alert(1)&lt;/script&gt; &amp; tori" in raw


def test_discourse_sanitised_body_posted(
    store: Store,
    channel_settings: Settings,
    discourse: DiscourseServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    _publish(store, _only(channel_settings, "discourse"))

    raw = next(iter(discourse.posts.values()))["raw"]
    assert raw.startswith("<p>Tie suljetaan <b>maanantaina</b>.</p>")


def test_mastodon_status_plain_text(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1", title="Katu & tori <suljettu>")
    _publish(store, _only(channel_settings, "mastodon"))

    status = next(iter(mastodon.statuses.values()))
    assert status["status"].startswith("Katu & tori <suljettu>")
    assert "Katu &amp; tori &lt;suljettu&gt;" in status["content"]


def test_unsafe_link_not_posted(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    discourse: DiscourseServer,
    receiver: WebhookReceiver,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1", url="javascript:alert(1)")
    _publish(store, channel_settings)

    status = next(iter(mastodon.statuses.values()))
    raw = next(iter(discourse.posts.values()))["raw"]
    item = next(iter(receiver.accepted.values()))["item"]
    assert "javascript:" not in status["status"]
    assert "https://noticeboard.example/notices/n1" in status["status"]
    assert "javascript:" not in raw
    assert item["url"] == "https://noticeboard.example/notices/n1"


def _withdraw(store: Store, notice_id: str, when: datetime) -> None:
    with store.session() as session:
        session.get(Notice, notice_id).withdrawn_at = when


def test_withdrawal_marked_once(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    discourse: DiscourseServer,
    receiver: WebhookReceiver,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    _publish(store, channel_settings)
    _withdraw(store, "n1", NOW)

    report = _publish(store, channel_settings, NOW + timedelta(minutes=5))
    again = _publish(store, channel_settings, NOW + timedelta(hours=5))

    status = next(iter(mastodon.statuses.values()))
    topic = next(iter(discourse.topics.values()))
    post = discourse.posts[topic["first_post_id"]]
    assert all(channel.withdrawn == 1 for channel in report.channels.values())
    assert all(channel.withdrawn == 0 for channel in again.channels.values())
    assert len(mastodon.statuses) == 1
    assert status["edits"] == 1
    assert status["status"].startswith("[Withdrawn] ")
    assert len(discourse.topics) == 1
    assert topic["title"] == "[Withdrawn] Tiedote n1"
    assert post["raw"].startswith("<p><strong>Withdrawn.</strong>")
    assert [d["event"] for d in receiver.accepted.values()] == [
        "notice.created",
        "notice.withdrawn",
    ]
    withdrawals = [row for row in _rows(store) if row.channel.endswith(":withdrawn")]
    assert [(row.channel, row.status) for row in withdrawals] == [
        ("discourse:withdrawn", "sent"),
        ("mastodon:withdrawn", "sent"),
        ("webhook:withdrawn", "sent"),
    ]


def test_withdrawal_needs_earlier_post(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1", withdrawn=True)

    report = _publish(store, _only(channel_settings, "mastodon"))

    assert report.channels["mastodon"].withdrawn == 0
    assert mastodon.received == []
    assert _rows(store) == []


def test_withdrawal_crash_reconciled(
    store: Store,
    channel_settings: Settings,
    receiver: WebhookReceiver,
    make_notice: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_notice("n1")
    settings = _only(channel_settings, "webhook")
    _publish(store, settings)
    _withdraw(store, "n1", NOW)
    with monkeypatch.context() as patch:
        _crash_on_record(patch)
        _publish(store, settings, NOW + timedelta(minutes=1))

    later = _publish(store, settings, NOW + ledger.INTENT_STALE_AFTER + timedelta(minutes=2))

    assert later.channels["webhook"].withdrawn == 1
    assert receiver.repeats == 1
    assert [d["event"] for d in receiver.accepted.values()] == [
        "notice.created",
        "notice.withdrawn",
    ]


def test_new_version_after_withdrawal_restores(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    settings = _only(channel_settings, "mastodon")
    _publish(store, settings)
    _withdraw(store, "n1", NOW)
    _publish(store, settings, NOW + timedelta(minutes=1))
    with store.session() as session:
        session.get(Notice, "n1").withdrawn_at = None
    new_version(store, "n1", "Tiedote palautettu", NOW + timedelta(minutes=2))

    _publish(store, settings, NOW + timedelta(minutes=3))

    status = next(iter(mastodon.statuses.values()))
    assert len(mastodon.statuses) == 1
    assert status["status"].startswith("Tiedote palautettu")
    assert status["edits"] == 2


def test_platform_dedup_keys_sent(
    store: Store,
    channel_settings: Settings,
    mastodon: MastodonServer,
    receiver: WebhookReceiver,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1")
    _publish(store, _only(channel_settings, "mastodon"))
    _publish(store, _only(channel_settings, "webhook"))

    post = next(r for r in mastodon.received if r.method == "POST")
    delivery = receiver.received[0]
    assert post.headers["Idempotency-Key"] == ledger.idempotency_key("mastodon", "n1", 1)
    assert delivery.headers["X-Noticeboard-Delivery"] == ledger.idempotency_key("webhook", "n1", 1)
    assert delivery.headers["X-Noticeboard-Timestamp"].isdigit()
