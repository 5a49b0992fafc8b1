"""Write a synthetic replay set for the benchmarks: 50 sources, 10,000 notices, six languages.

    .venv/bin/python benchmarks/generate_replay.py OUTPUT_DIR [--base-url URL] [--sources N]
        [--notices N] [--seed N]

OUTPUT_DIR receives one feed file per source (`feeds/<source-id>.xml`), a replay manifest
(`manifest.json`) and a catalog (`catalog.yaml`) whose URLs start with `--base-url`. The
benchmark script serves OUTPUT_DIR over HTTP on 127.0.0.1 and passes that server's URL here, so
the catalog points at it; with the default base URL the set can also be run through
`noticeboard run --replay OUTPUT_DIR/manifest.json`.

The text is word salad built from the word lists below (written for this script): each notice
has a title of 5 to 12 words and a body of one to four paragraphs (about 40 to 260 words), with
place names and topic words so that language detection and tagging have real work to do. Half
of the sources are RSS 2.0 and half Atom 1.0, and a third of the sources print their dates in
the local forms that authorities use (`4.12.2026 klo 10.15`, `4 декабря 2026`, ...) instead of
RFC 822 or RFC 3339. The same seed and `--anchor` date always give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

DEFAULT_BASE_URL = "https://bench.example.org"
DEFAULT_SOURCES = 50
DEFAULT_NOTICES = 10_000
DEFAULT_SEED = 20261204

LANGUAGES = ("fi", "sv", "et", "lv", "en", "ru")

# Country, IANA zone and region code of each language's sources. English and Russian notices
# come from Finnish and Estonian authorities, as they do in practice.
LANGUAGE_HOME = {
    "fi": ("FI", "Europe/Helsinki", "FI"),
    "sv": ("SE", "Europe/Stockholm", "SE"),
    "et": ("EE", "Europe/Tallinn", "EE"),
    "lv": ("LV", "Europe/Riga", "LV"),
    "en": ("FI", "Europe/Helsinki", "FI"),
    "ru": ("EE", "Europe/Tallinn", "EE"),
}

WORDS = {
    "fi": (
        "kaupunki ilmoittaa asukkaille että katu suljetaan liikenteeltä maanantaista alkaen "
        "tiedote koskee veroilmoitus palautetaan määräajassa viimeistään hakemus käsitellään "
        "verkkopalvelussa asiakaspalvelu on suljettu juhlapyhän vuoksi lisätietoja antaa "
        "palvelupiste sijaitsee kirjaston yhteydessä vesijohtotyöt aiheuttavat katkoja "
        "kiinteistöjen omistajia pyydetään varautumaan lumitöihin päätös tulee voimaan "
        "oleskelulupa haetaan sähköisesti ajanvaraus tarvitaan toimipisteessä terveysasema "
        "rokotukset alkavat koulujen loma-ajat muuttuvat joukkoliikenteen aikataulut "
        "tarkistetaan kunnanvaltuusto hyväksyi talousarvion rakennuslupa myönnettiin"
    ).split(),
    "sv": (
        "kommunen informerar invånarna om att gatan stängs för trafik från och med måndag "
        "meddelandet gäller deklarationen ska lämnas senast ansökan behandlas digitalt "
        "kundtjänsten är stängd på grund av helgdagen mer information finns servicekontoret "
        "ligger vid biblioteket vattenledningsarbeten orsakar avbrott fastighetsägare "
        "uppmanas att förbereda snöröjning beslutet träder i kraft uppehållstillstånd söks "
        "elektroniskt tidsbokning krävs på kontoret vårdcentralen vaccinationerna börjar "
        "skolornas lov ändras kollektivtrafikens tidtabeller ses över kommunfullmäktige "
        "godkände budgeten bygglov beviljades myndigheten påminner"
    ).split(),
    "et": (
        "linn teatab elanikele et tänav suletakse liikluseks alates esmaspäevast teade "
        "puudutab tuludeklaratsioon tuleb esitada hiljemalt taotlus menetletakse "
        "iseteeninduses klienditeenindus on suletud riigipüha tõttu lisateavet annab "
        "teeninduskoht asub raamatukogu juures veetorustiku tööd põhjustavad katkestusi "
        "kinnistute omanikel palutakse valmistuda lumetöödeks otsus jõustub elamisluba "
        "taotletakse elektrooniliselt broneering on vajalik büroos perearstikeskus "
        "vaktsineerimine algab koolide vaheajad muutuvad ühistranspordi sõiduplaanid "
        "vaadatakse üle volikogu kinnitas eelarve ehitusluba väljastati amet tuletab meelde"
    ).split(),
    "lv": (
        "pilsēta informē iedzīvotājus ka iela tiks slēgta satiksmei no pirmdienas "
        "paziņojums attiecas uz ienākumu deklarācija jāiesniedz ne vēlāk kā iesniegums "
        "tiek izskatīts elektroniski klientu apkalpošanas centrs ir slēgts svētku dēļ "
        "papildu informāciju sniedz birojs atrodas pie bibliotēkas ūdensvada darbi rada "
        "pārtraukumus īpašniekiem lūdzam sagatavoties sniega tīrīšanai lēmums stājas spēkā "
        "uzturēšanās atļauja jāpieprasa tiešsaistē pieraksts ir nepieciešams birojā "
        "ģimenes ārsts vakcinācija sākas skolu brīvdienas mainās sabiedriskā transporta "
        "saraksti tiek pārskatīti dome apstiprināja budžetu būvatļauja izsniegta aģentūra"
    ).split(),
    "en": (
        "the city informs residents that the street will be closed to traffic from monday "
        "this notice concerns tax returns must be filed no later than the application is "
        "processed online customer service is closed because of the public holiday more "
        "information is available from the service point located next to the library "
        "water mains work causes interruptions property owners are asked to prepare for "
        "snow clearing the decision enters into force residence permits are applied for "
        "electronically an appointment is required at the office health centre vaccinations "
        "begin school holidays change public transport timetables are reviewed the council "
        "approved the budget a building permit was granted the agency reminds"
    ).split(),
    "ru": (
        "город сообщает жителям что улица будет закрыта для движения с понедельника "
        "уведомление касается налоговая декларация должна быть подана не позднее заявление "
        "рассматривается в электронной среде обслуживание клиентов закрыто в связи с "
        "праздником дополнительную информацию предоставляет бюро находится рядом с "
        "библиотекой работы на водопроводе вызывают перебои владельцам недвижимости "
        "предлагается подготовиться к уборке снега решение вступает в силу вид на "
        "жительство оформляется электронно требуется предварительная запись в бюро "
        "семейный врач вакцинация начинается школьные каникулы меняются расписание "
        "общественного транспорта пересматривается совет утвердил бюджет разрешение выдано"
    ).split(),
}

PLACES = {
    "fi": ("Helsingissä", "Tampereella", "Turussa", "Oulussa", "Espoossa", "Vantaalla"),
    "sv": ("Stockholm", "Göteborg", "Malmö", "Uppsala", "Västerås", "Örebro"),
    "et": ("Tallinnas", "Tartus", "Pärnus", "Narvas", "Viljandis", "Rakveres"),
    "lv": ("Rīgā", "Daugavpilī", "Liepājā", "Jelgavā", "Jūrmalā", "Ventspilī"),
    "en": ("Helsinki", "Tampere", "Turku", "Tallinn", "Riga", "Stockholm"),
    "ru": ("Таллинне", "Нарве", "Тарту", "Риге", "Хельсинки", "Кохтла-Ярве"),
}

MONTHS = {
    "fi": ("tammikuuta", "helmikuuta", "maaliskuuta", "huhtikuuta", "toukokuuta", "kesäkuuta",
           "heinäkuuta", "elokuuta", "syyskuuta", "lokakuuta", "marraskuuta", "joulukuuta"),
    "sv": ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti",
           "september", "oktober", "november", "december"),
    "et": ("jaanuar", "veebruar", "märts", "aprill", "mai", "juuni", "juuli", "august",
           "september", "oktoober", "november", "detsember"),
    "lv": ("janvāris", "februāris", "marts", "aprīlis", "maijs", "jūnijs", "jūlijs", "augusts",
           "septembris", "oktobris", "novembris", "decembris"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "ru": ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
           "сентября", "октября", "ноября", "декабря"),
}

AUTHORITIES = {
    "fi": "Esimerkkikaupunki",
    "sv": "Exempelkommun",
    "et": "Näidisamet",
    "lv": "Paraugaģentūra",
    "en": "Example Agency",
    "ru": "Пример ведомства",
}


@dataclass(frozen=True)
class GeneratedSource:
    """One generated source: its catalog fields and the feed file written for it."""

    id: str
    language: str
    kind: str
    local_dates: bool
    notices: int
    path: str


def local_date(moment: datetime, language: str) -> str:
    """Print `moment` (already in the source's zone) the way an authority of `language` would."""
    day, month, year = moment.day, moment.month, moment.year
    clock = f"{moment.hour:02d}:{moment.minute:02d}"
    if language == "fi":
        return f"{day}.{month}.{year} klo {moment.hour}.{moment.minute:02d}"
    if language == "sv":
        return f"{day} {MONTHS['sv'][month - 1]} {year} {clock}"
    if language == "et":
        return f"{day:02d}.{month:02d}.{year} kell {clock}"
    if language == "lv":
        return f"{year}. gada {day}. {MONTHS['lv'][month - 1]} {clock}"
    if language == "ru":
        return f"{day} {MONTHS['ru'][month - 1]} {year} {clock}"
    return f"{day} {MONTHS['en'][month - 1]} {year} {clock}"


def sentence(rng: random.Random, language: str, words: int) -> str:
    """Return one sentence of `words` words from the language's list, sometimes with a place."""
    chosen = [rng.choice(WORDS[language]) for _ in range(words)]
    if words > 4 and rng.random() < 0.5:
        chosen[rng.randrange(1, words)] = rng.choice(PLACES[language])
    text = " ".join(chosen)
    return text[0].upper() + text[1:] + "."


def notice_body(rng: random.Random, language: str) -> str:
    """Return the HTML body of a notice: one to four paragraphs, some with a link or a list."""
    paragraphs = []
    for _ in range(rng.randint(1, 4)):
        sentences = " ".join(sentence(rng, language, rng.randint(6, 16)) for _ in range(rng.randint(1, 4)))
        paragraphs.append(f"<p>{escape(sentences)}</p>")
    if rng.random() < 0.3:
        items = "".join(f"<li>{escape(sentence(rng, language, 4))}</li>" for _ in range(3))
        paragraphs.append(f"<ul>{items}</ul>")
    if rng.random() < 0.3:
        paragraphs.append(f'<p><a href="/info/{rng.randrange(10_000)}?utm_source=feed">{escape(sentence(rng, language, 3))}</a></p>')
    return "".join(paragraphs)


def rss_document(source: GeneratedSource, base_url: str, items: list[dict[str, str]]) -> str:
    """Render an RSS 2.0 document of `items`."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n<channel>\n',
        f"<title>{escape(AUTHORITIES[source.language])} {source.id}</title>\n",
        f"<link>{base_url}/{source.id}/</link>\n<description>{source.id}</description>\n",
        f"<language>{source.language}</language>\n",
    ]
    for item in items:
        parts.append(
            "<item>"
            f"<title>{escape(item['title'])}</title>"
            f"<link>{escape(item['link'])}</link>"
            f'<guid isPermaLink="false">{item["guid"]}</guid>'
            f"<description>{escape(item['body'])}</description>"
            f"<pubDate>{escape(item['date'])}</pubDate>"
            "</item>\n"
        )
    parts.append("</channel>\n</rss>\n")
    return "".join(parts)


def atom_document(source: GeneratedSource, base_url: str, items: list[dict[str, str]], updated: str) -> str:
    """Render an Atom 1.0 document of `items`."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{source.language}">\n',
        f"<title>{escape(AUTHORITIES[source.language])} {source.id}</title>\n",
        f"<id>{base_url}/{source.id}/</id>\n<updated>{updated}</updated>\n",
        f'<link rel="alternate" href="{base_url}/{source.id}/"/>\n',
    ]
    for item in items:
        parts.append(
            "<entry>"
            f"<title>{escape(item['title'])}</title>"
            f'<link rel="alternate" href="{escape(item["link"])}"/>'
            f"<id>urn:bench:{item['guid']}</id>"
            f"<published>{escape(item['date'])}</published>"
            f"<updated>{escape(item['date'])}</updated>"
            f'<content type="html">{escape(item["body"])}</content>'
            "</entry>\n"
        )
    parts.append("</feed>\n")
    return "".join(parts)


def generate_items(
    rng: random.Random, source: GeneratedSource, base_url: str, anchor: datetime
) -> list[dict[str, str]]:
    """Return the source's items, newest first, with dates in the source's own format."""
    zone = ZoneInfo(LANGUAGE_HOME[source.language][1])
    items = []
    for number in range(source.notices):
        moment = (anchor - timedelta(minutes=97 * number + rng.randrange(90))).astimezone(zone)
        if source.local_dates:
            printed = local_date(moment, source.language)
        elif source.kind == "rss":
            printed = format_datetime(moment)
        else:
            printed = moment.isoformat(timespec="seconds")
        guid = f"{source.id}-{number:05d}"
        items.append(
            {
                "guid": guid,
                "title": sentence(rng, source.language, rng.randint(5, 12)).rstrip("."),
                "link": f"{base_url}/{source.id}/notices/{number}",
                "body": notice_body(rng, source.language),
                "date": printed,
            }
        )
    return items


def plan_sources(count: int, notices: int) -> list[GeneratedSource]:
    """Spread `notices` over `count` sources, cycling through the languages and both formats."""
    sources = []
    for index in range(count):
        language = LANGUAGES[index % len(LANGUAGES)]
        kind = "rss" if index % 2 == 0 else "atom"
        share = notices // count + (1 if index < notices % count else 0)
        source_id = f"bench-{language}-{index:02d}"
        sources.append(
            GeneratedSource(
                id=source_id,
                language=language,
                kind=kind,
                local_dates=index % 3 == 0,
                notices=share,
                path=f"feeds/{source_id}.xml",
            )
        )
    return sources


def catalog_entry(source: GeneratedSource, base_url: str) -> str:
    """Return the catalog YAML of one source."""
    country, zone, region = LANGUAGE_HOME[source.language]
    return (
        f"  - id: {source.id}\n"
        f"    authority: {json.dumps(AUTHORITIES[source.language] + ' ' + source.id, ensure_ascii=False)}\n"
        f"    country: {country}\n"
        f"    regions: [{region}]\n"
        f"    languages: [{source.language}]\n"
        f"    timezone: {zone}\n"
        f"    kind: {source.kind}\n"
        f'    urls: ["{base_url}/{source.path}"]\n'
    )


def generate(
    output_dir: Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    sources: int = DEFAULT_SOURCES,
    notices: int = DEFAULT_NOTICES,
    seed: int = DEFAULT_SEED,
    anchor: date | None = None,
) -> list[GeneratedSource]:
    """Write the feeds, `manifest.json` and `catalog.yaml` into `output_dir`; return the plan.

    `anchor` is the day of the newest notice (default: yesterday, so no date lies in the future).
    """
    base_url = base_url.rstrip("/")
    anchor_day = anchor or (datetime.now(UTC).date() - timedelta(days=1))
    anchor_moment = datetime(anchor_day.year, anchor_day.month, anchor_day.day, 12, tzinfo=UTC)
    rng = random.Random(seed)
    plan = plan_sources(sources, notices)
    (output_dir / "feeds").mkdir(parents=True, exist_ok=True)

    captures = []
    for source in plan:
        items = generate_items(rng, source, base_url, anchor_moment)
        if source.kind == "rss":
            document = rss_document(source, base_url, items)
            content_type = "application/rss+xml; charset=utf-8"
        else:
            document = atom_document(source, base_url, items, anchor_moment.isoformat())
            content_type = "application/atom+xml; charset=utf-8"
        body = document.encode("utf-8")
        (output_dir / source.path).write_bytes(body)
        captures.append(
            {
                "url": f"{base_url}/{source.path}",
                "file": source.path,
                "status": 200,
                "headers": {"Content-Type": content_type, "ETag": f'"{hashlib.sha256(body).hexdigest()[:16]}"'},
            }
        )

    manifest = {"captures": captures}
    (output_dir / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    header = f"# Generated by benchmarks/generate_replay.py: {sources} sources, {notices} notices.\nsources:\n"
    catalog = header + "".join(catalog_entry(source, base_url) for source in plan)
    (output_dir / "catalog.yaml").write_text(catalog, encoding="utf-8")
    return plan


def main() -> None:
    """Parse the command line and write the replay set."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", type=Path, help="folder to write the feeds, manifest and catalog into")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help="URL prefix of every feed in the catalog")
    parser.add_argument("--sources", type=int, default=DEFAULT_SOURCES, help="number of sources")
    parser.add_argument("--notices", type=int, default=DEFAULT_NOTICES, help="number of notices over all sources")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed of the text")
    parser.add_argument("--anchor", type=date.fromisoformat, default=None, help="day of the newest notice (YYYY-MM-DD)")
    arguments = parser.parse_args()

    plan = generate(
        arguments.output_dir,
        base_url=arguments.base_url,
        sources=arguments.sources,
        notices=arguments.notices,
        seed=arguments.seed,
        anchor=arguments.anchor,
    )
    total = sum(source.notices for source in plan)
    print(f"wrote {len(plan)} sources with {total} notices to {arguments.output_dir}")


if __name__ == "__main__":
    main()
