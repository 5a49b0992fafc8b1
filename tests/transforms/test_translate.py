"""Translation through deep-translator's LibreTranslate client against a local server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice, Translation, TranslationMemory
from tests.servers.translator import TranslatorServer
from transforms._chunking import join_chunks, split_text
from transforms._glossary import load_glossary
from transforms._providers import parse_retry_after
from transforms.translate import RateLimiter, RetryPolicy, TranslationDeferred, Translator
from transforms.translate_stage import queue_translations, translate_pending

NOW = datetime(2026, 3, 4, 8, 15, tzinfo=UTC)

PARAGRAPH = (
    "Kohta {n}. Hakemukset käsitellään saapumisjärjestyksessä, ja päätös lähetetään hakijalle "
    "kirjeenä tai asiointipalveluun. Hakemukseen on liitettävä selvitys tuloista ja asumisesta. "
    "Puutteellinen hakemus voi viivästyttää käsittelyä useilla viikoilla, joten tarkista liitteet "
    "ennen lähettämistä. Neuvontaa saa puhelimitse arkipäivisin kello 9–16."
)


def long_body(paragraphs: int = 18) -> str:
    return "\n\n".join(PARAGRAPH.format(n=n) for n in range(1, paragraphs + 1))


@pytest.fixture
def server() -> Iterator[TranslatorServer]:
    with TranslatorServer() as running:
        yield running


@pytest.fixture
def settings(server: TranslatorServer) -> Settings:
    return Settings(
        translator_provider="libre",
        translator_url=server.url,
        translation_targets=("en",),
        translation_rate_per_second=1_000_000.0,
        backoff_base=0.01,
        max_retries=2,
        connect_timeout=2.0,
        read_timeout=2.0,
    )


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def add_notice(store: Store, settings: Settings, notice_id: str, **fields: object) -> None:
    values: dict[str, object] = {
        "id": notice_id,
        "source_id": "fi-test",
        "title": "Tiedote: tietyö päättyy torstaina",
        "summary_html": "<p>Liikenne palautuu normaaliksi.</p>",
        "summary_text": "Liikenne palautuu normaaliksi.",
        "body_html": '<p>Lue <a href="https://agency.example.fi/tiedote">koko tiedote</a>.</p>',
        "body_text": "Lue koko tiedote.",
        "first_seen_at": NOW,
        "changed_at": NOW,
        "content_hash": "0" * 64,
        "language": "fi",
        "version": 1,
    }
    values.update(fields)
    with store.session() as session:
        notice = Notice(**values)
        session.add(notice)
        session.flush()
        queue_translations(session, notice, settings, now=NOW)


def translation_of(store: Store, notice_id: str, language: str = "en") -> Translation:
    with store.session() as session:
        row = session.scalars(
            select(Translation).where(
                Translation.notice_id == notice_id, Translation.language == language
            )
        ).one()
        session.expunge(row)
        return row


# Chunking


def test_split_text_keeps_layout() -> None:
    text = long_body()
    chunks = split_text(text, 4500)
    assert join_chunks([chunk.text for chunk in chunks], chunks) == text


def test_split_text_under_limit() -> None:
    chunks = split_text(long_body(), 1000)
    assert max(len(chunk.text) for chunk in chunks) < 1000


def test_split_text_at_sentences() -> None:
    paragraph = " ".join(["Tämä on lause."] * 200)
    chunks = split_text(paragraph, 500)
    assert all(chunk.text.endswith(".") for chunk in chunks)


def test_split_text_cuts_long_word() -> None:
    chunks = split_text("x" * 1200, 500)
    assert "".join(chunk.text for chunk in chunks) == "x" * 1200


def test_long_body_sent_in_chunks(server: TranslatorServer, settings: Settings) -> None:
    translator = Translator(settings)
    translated = translator.translate_text(long_body(), "fi", "en")
    sizes = [len(text) for text in server.received_texts()]
    assert len(sizes) == 2
    assert max(sizes) < 4500
    for n in range(1, 19):
        assert f"[en] Kohta {n}." in translated
    assert translated.index("Kohta 17.") < translated.index("Kohta 18.")


def test_google_chunks_under_its_limit() -> None:
    translator = Translator(Settings(translator_provider="google", translation_chunk_chars=9000))
    assert translator.chunk_chars <= 5000


# Markup and glossary


def test_markup_survives(server: TranslatorServer, settings: Settings) -> None:
    html = (
        '<p>Lue <a href="https://agency.example.fi/a?x=1&amp;y=2">päätös</a> ja '
        "<strong>liitteet</strong>.</p>"
    )
    translated = Translator(settings).translate_html(html, "fi", "en")
    assert translated == (
        '<p>[en] Lue <a href="https://agency.example.fi/a?x=1&amp;y=2">[en] päätös</a> [en] ja '
        "<strong>[en] liitteet</strong>.</p>"
    )


def test_markup_batches_text_nodes(server: TranslatorServer, settings: Settings) -> None:
    html = "".join(f"<li>Kohta numero {n}</li>" for n in range(30))
    Translator(settings).translate_html(f"<ul>{html}</ul>", "fi", "en")
    assert server.calls == 1


def test_glossary_terms_not_sent(server: TranslatorServer, settings: Settings) -> None:
    Translator(settings).translate_text("Kelan ja Skatteverket ohjeet muuttuvat.", "fi", "en")
    sent = server.received_texts()[0]
    assert "Kela" not in sent
    assert "Skatteverket" not in sent


def test_glossary_terms_kept(server: TranslatorServer, settings: Settings) -> None:
    translated = Translator(settings).translate_text(
        "Kelan ja Migrin ohjeet muuttuvat.", "fi", "en"
    )
    assert translated == "[en] Kela ja Migri ohjeet muuttuvat."


def test_glossary_english_name(server: TranslatorServer, settings: Settings) -> None:
    translated = Translator(settings).translate_text("Maahanmuuttovirasto tiedottaa.", "fi", "en")
    assert translated == "[en] Finnish Immigration Service tiedottaa."


def test_glossary_english_name_only_for_english(
    server: TranslatorServer, settings: Settings
) -> None:
    translated = Translator(settings).translate_text("Maahanmuuttovirasto tiedottaa.", "fi", "ru")
    assert translated == "[ru] Maahanmuuttovirasto tiedottaa."


def test_glossary_from_settings_path(
    tmp_path: Path, server: TranslatorServer, settings: Settings
) -> None:
    path = tmp_path / "glossary.yaml"
    path.write_text("terms:\n  - term: Tulli\n    english: Finnish Customs\n", encoding="utf-8")
    translator = Translator(settings.replace(glossary_path=path))
    assert (
        translator.translate_text("Tulli tiedottaa.", "fi", "en")
        == "[en] Finnish Customs tiedottaa."
    )


def test_packaged_glossary_has_authorities() -> None:
    terms = {term.term for term in load_glossary().terms}
    assert {
        "Kela",
        "Migri",
        "Skatteverket",
        "Maksuamet",
        "EMTA",
        "VID",
        "PMLP",
        "Verohallinto",
        "Vero",
    } <= terms


# Translation memory


def test_rerun_makes_no_calls(server: TranslatorServer, settings: Settings, store: Store) -> None:
    add_notice(store, settings, "n1")
    translate_pending(store, settings, now=NOW)
    calls_after_first = server.calls

    add_notice(store, settings, "n2")
    report = translate_pending(store, settings, now=NOW)
    assert server.calls == calls_after_first
    assert report.provider_calls == 0
    assert report.memory_hits >= 3
    assert translation_of(store, "n2").title == translation_of(store, "n1").title


def test_memory_keyed_by_provider(
    server: TranslatorServer, settings: Settings, store: Store
) -> None:
    add_notice(store, settings, "n1")
    translate_pending(store, settings, now=NOW)
    with store.session() as session:
        providers = set(session.scalars(select(TranslationMemory.provider)))
    assert providers == {"libre"}


# The translation stage


def test_pending_translated(server: TranslatorServer, settings: Settings, store: Store) -> None:
    add_notice(store, settings, "n1")
    report = translate_pending(store, settings, now=NOW)
    row = translation_of(store, "n1")
    assert report.translated == 1
    assert row.status == "done"
    assert row.provider == "libre"
    assert row.title == "[en] Tiedote: tietyö päättyy torstaina"
    assert (
        row.body_html
        == '<p>[en] Lue <a href="https://agency.example.fi/tiedote">[en] koko tiedote</a>.</p>'
    )
    assert row.body_text == "[en] Lue [en] koko tiedote."
    assert row.summary_text == "[en] Liikenne palautuu normaaliksi."


def test_no_translation_into_own_language(settings: Settings, store: Store) -> None:
    add_notice(store, settings.replace(translation_targets=("en", "ru")), "n1", language="en")
    with store.session() as session:
        languages = set(session.scalars(select(Translation.language)))
    assert languages == {"ru"}


def test_no_text_skipped(server: TranslatorServer, settings: Settings, store: Store) -> None:
    add_notice(
        store,
        settings,
        "n1",
        title="2026/0142",
        summary_html="",
        summary_text="",
        body_html='<p><a href="https://agency.example.ee/d/2026-0142.pdf">https://agency.example.ee/d/2026-0142.pdf</a></p>',
        body_text="https://agency.example.ee/d/2026-0142.pdf",
        language="et",
    )
    translate_pending(store, settings, now=NOW)
    assert translation_of(store, "n1").status == "skipped"
    assert server.calls == 0


def test_unknown_language_skipped(settings: Settings, store: Store) -> None:
    add_notice(store, settings, "n1", language=None)
    assert translation_of(store, "n1").status == "skipped"


def test_new_version_translated_again(
    server: TranslatorServer, settings: Settings, store: Store
) -> None:
    add_notice(store, settings, "n1")
    translate_pending(store, settings, now=NOW)

    with store.session() as session:
        notice = session.get(Notice, "n1")
        notice.version = 2
        notice.title = "Tiedote: tietyö jatkuu perjantaihin"
        queue_translations(session, notice, settings, now=NOW)
    assert translation_of(store, "n1").status == "pending"

    translate_pending(store, settings, now=NOW)
    row = translation_of(store, "n1")
    assert row.version == 2
    assert row.title == "[en] Tiedote: tietyö jatkuu perjantaihin"


def test_limit_caps_batch(server: TranslatorServer, settings: Settings, store: Store) -> None:
    for n in range(3):
        add_notice(store, settings, f"n{n}", title=f"Tiedote numero {n} koskee tietöitä")
    report = translate_pending(store, settings, now=NOW, limit=2)
    assert report.translated == 2


# Provider failures


def test_429_retry_after_defers_batch(
    server: TranslatorServer, settings: Settings, store: Store
) -> None:
    add_notice(store, settings, "n1")
    add_notice(store, settings, "n2", title="Toinen tiedote koskee siltatöitä")
    server.fail_next(429, retry_after=120)

    report = translate_pending(store, settings, now=NOW, sleep=FakeSleep())

    assert server.calls == 1
    assert report.deferred == 2
    for notice_id in ("n1", "n2"):
        row = translation_of(store, notice_id)
        assert row.status == "pending"
        assert row.next_attempt_at >= NOW + timedelta(seconds=120)


def test_429_not_retried_early(server: TranslatorServer, settings: Settings, store: Store) -> None:
    add_notice(store, settings, "n1")
    server.fail_next(429, retry_after=120)
    translate_pending(store, settings, now=NOW, sleep=FakeSleep())

    report = translate_pending(store, settings, now=NOW + timedelta(seconds=60))
    assert report.translated == 0
    assert server.calls == 1


def test_429_then_translated_later(
    server: TranslatorServer, settings: Settings, store: Store
) -> None:
    add_notice(store, settings, "n1")
    server.fail_next(429, retry_after=120)
    translate_pending(store, settings, now=NOW, sleep=FakeSleep())

    translate_pending(store, settings, now=NOW + timedelta(seconds=121))
    assert translation_of(store, "n1").status == "done"


def test_429_log_names_provider_and_notice(
    server: TranslatorServer, settings: Settings, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    add_notice(store, settings, "n1")
    server.fail_next(429, retry_after=120)
    with caplog.at_level(logging.WARNING, logger="transforms.translate_stage"):
        translate_pending(store, settings, now=NOW, sleep=FakeSleep())
    assert "provider=libre notice=n1" in caplog.text


def test_short_retry_after_waited(server: TranslatorServer, settings: Settings) -> None:
    server.fail_next(429, retry_after=3)
    sleep = FakeSleep()
    translated = Translator(settings, sleep=sleep).translate_text("Tiedote", "fi", "en")
    assert translated == "[en] Tiedote"
    assert 3.0 in sleep.calls
    assert server.calls == 2


def test_500_retried_with_backoff(server: TranslatorServer, settings: Settings) -> None:
    server.fail_next(500, times=2)
    sleep = FakeSleep()
    translated = Translator(settings, sleep=sleep).translate_text("Tiedote", "fi", "en")
    assert translated == "[en] Tiedote"
    assert sleep.calls == [0.01, 0.02]


def test_500_persisting_defers(server: TranslatorServer, settings: Settings, store: Store) -> None:
    add_notice(store, settings, "n1")
    server.fail_next(500, times=10)
    report = translate_pending(store, settings, now=NOW, sleep=FakeSleep())
    assert report.deferred == 1
    assert server.calls == 3
    assert translation_of(store, "n1").status == "pending"


def test_400_fails_one_notice_only(
    server: TranslatorServer, settings: Settings, store: Store
) -> None:
    add_notice(store, settings, "n1")
    add_notice(store, settings, "n2", title="Toinen tiedote koskee siltatöitä")
    server.fail_next(400)
    report = translate_pending(store, settings, now=NOW, sleep=FakeSleep())
    assert report.failed == 1
    assert report.translated == 1


def test_server_down_then_translated(
    server: TranslatorServer, settings: Settings, store: Store
) -> None:
    add_notice(store, settings, "n1")
    add_notice(store, settings, "n2", title="Toinen tiedote koskee siltatöitä")
    server.stop()

    report = translate_pending(store, settings, now=NOW, sleep=FakeSleep())
    assert report.deferred == 2
    assert translation_of(store, "n1").status == "pending"
    assert translation_of(store, "n1").title is None

    server.start()
    translate_pending(store, settings, now=NOW + timedelta(hours=1))
    assert translation_of(store, "n1").status == "done"
    assert translation_of(store, "n2").status == "done"


def test_notice_untouched_while_pending(
    settings: Settings, store: Store, server: TranslatorServer
) -> None:
    add_notice(store, settings, "n1")
    server.stop()
    translate_pending(store, settings, now=NOW, sleep=FakeSleep())
    with store.session() as session:
        assert session.get(Notice, "n1").title == "Tiedote: tietyö päättyy torstaina"


def test_request_timeout(server: TranslatorServer, settings: Settings) -> None:
    server.delay_seconds = 1.0
    translator = Translator(
        settings,
        policy=RetryPolicy(max_retries=0, timeout=(1.0, 0.2)),
        sleep=FakeSleep(),
    )
    with pytest.raises(TranslationDeferred, match="unreachable"):
        translator.translate_text("Tiedote", "fi", "en")


def test_missing_url_keeps_pending(settings: Settings, store: Store) -> None:
    add_notice(store, settings, "n1")
    translate_pending(store, settings.replace(translator_url=""), now=NOW)
    assert translation_of(store, "n1").status == "pending"


@pytest.mark.parametrize(
    "changes", [{"translation_rate_per_second": 0.0}, {"translation_chunk_chars": 1}]
)
def test_invalid_setting_keeps_pending(
    changes: dict[str, float], server: TranslatorServer, settings: Settings, store: Store
) -> None:
    add_notice(store, settings, "n1")
    invalid = settings.replace()
    for name, value in changes.items():
        # Settings rejects these values when it is built; the stage must still survive them.
        object.__setattr__(invalid, name, value)

    report = translate_pending(store, invalid, now=NOW)

    assert report.translated == 0
    assert translation_of(store, "n1").status == "pending"
    assert server.calls == 0


def test_rate_limiter_spaces_requests() -> None:
    clock = [100.0]
    sleep = FakeSleep()
    limiter = RateLimiter(2.0, clock=lambda: clock[0])

    for _ in range(3):
        limiter.wait(sleep)

    assert sleep.calls == [0.5, 1.0]


def test_rate_limiter_no_wait_after_pause() -> None:
    clock = [100.0]
    sleep = FakeSleep()
    limiter = RateLimiter(2.0, clock=lambda: clock[0])

    limiter.wait(sleep)
    clock[0] += 5.0
    limiter.wait(sleep)

    assert sleep.calls == []


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 04 Mar 2026 08:17:00 GMT", now=NOW) == 120.0


# Field cases


def test_case_long_body(cases_dir: Path, server: TranslatorServer, settings: Settings) -> None:
    text = (cases_dir / "BR-12.txt").read_text(encoding="utf-8")
    translated = Translator(settings).translate_text(text, "fi", "en")
    assert max(len(sent) for sent in server.received_texts()) < 4500
    for n in range(1, 19):
        assert f"Kohta {n}." in translated


def test_case_429(
    cases_dir: Path, server: TranslatorServer, settings: Settings, store: Store
) -> None:
    raw = (cases_dir / "BR-13.http").read_bytes().decode("utf-8")
    header = next(line for line in raw.splitlines() if line.lower().startswith("retry-after:"))
    add_notice(store, settings, "n1")
    server.fail_next(429, retry_after=header.split(":", 1)[1].strip())
    translate_pending(store, settings, now=NOW, sleep=FakeSleep())
    assert translation_of(store, "n1").next_attempt_at >= NOW + timedelta(seconds=120)


def test_error_hides_query_string(server: TranslatorServer, settings: Settings) -> None:
    server.stop()
    translator = Translator(
        settings.replace(translator_api_key="secret-key-123"),
        policy=RetryPolicy(max_retries=0),
        sleep=FakeSleep(),
    )
    with pytest.raises(TranslationDeferred) as raised:
        translator.translate_text("Tiedote", "fi", "en")
    assert "secret-key-123" not in str(raised.value)
