"""Language detection with lingua and langdetect, and the language codes map."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transforms import langcodes
from transforms.language import clean_for_detection, declared_language_from_url, detect_language

PROJECT_DIR = Path(__file__).resolve().parents[2]

SHORT = {
    "fi": "Tiedote",
    "sv": "Pressmeddelande",
    "et": "Pressiteade",
    "lv": "Paziņojums presei",
    "en": "Road works end on Thursday",
    "ru": "Дорожные работы завершатся",
}

LONG = {
    "fi": (
        "Kaupunki korjaa vesijohtoa Rantakadulla maanantaista alkaen. Työn aikana kadulla on "
        "kaistarajoituksia, ja pysäköinti on kielletty työmaan kohdalla. Työt valmistuvat arviolta "
        "kahden viikon kuluessa."
    ),
    "sv": (
        "Kommunen reparerar vattenledningen på Strandgatan från och med måndag. Under arbetet är "
        "ett körfält avstängt och parkering är förbjuden vid arbetsplatsen. Arbetet beräknas vara "
        "klart inom två veckor."
    ),
    "et": (
        "Linn parandab Rannatänaval veetorustikku alates esmaspäevast. Tööde ajal on tänaval "
        "sõidurajad piiratud ja parkimine on töömaa juures keelatud. Tööd lõpevad eeldatavasti "
        "kahe nädala jooksul."
    ),
    "lv": (
        "Pilsēta no pirmdienas remontē ūdensvadu Krasta ielā. Darbu laikā ielā būs joslu "
        "ierobežojumi, un pie būvlaukuma stāvēt aizliegts. "
        "Darbus plānots pabeigt divu nedēļu laikā."
    ),
    "en": (
        "The city is repairing the water main on Shore Street from Monday. During the work one "
        "lane is closed and parking is not allowed next to the site. The work should be finished "
        "within two weeks."
    ),
    "ru": (
        "С понедельника город ремонтирует водопровод на Береговой улице. Во время работ одна "
        "полоса закрыта, а парковка рядом с участком запрещена. Работы планируется завершить "
        "в течение двух недель."
    ),
}


@pytest.mark.parametrize("language", sorted(SHORT))
def test_short_title_lingua(language: str) -> None:
    assert detect_language(SHORT[language]).code == language


@pytest.mark.parametrize("detector", ["lingua", "langdetect"])
@pytest.mark.parametrize("language", sorted(LONG))
def test_long_text(language: str, detector: str) -> None:
    result = detect_language(LONG[language], detector=detector)
    assert result.code == language
    assert result.method == "detected"
    assert result.confidence > 0.8


def test_short_text_low_confidence() -> None:
    assert detect_language("Tiedote").confidence <= 0.5


def test_declared_agrees() -> None:
    result = detect_language(LONG["sv"], "sv-SE")
    assert result.code == "sv"
    assert result.method == "declared"


def test_declared_wins_on_short_text() -> None:
    result = detect_language("Pressiteade", "fi", detector="langdetect")
    assert result.code == "fi"
    assert result.method == "declared"
    assert result.confidence <= 0.5


def test_detector_overrules_wrong_declaration() -> None:
    result = detect_language(LONG["sv"], "fi")
    assert result.code == "sv"
    assert result.method == "detected"


def test_mixed_text_majority() -> None:
    text = LONG["fi"] + " Läs mer på svenska."
    assert detect_language(text).code == "fi"


def test_urls_and_numbers_ignored() -> None:
    text = (
        "https://www.example.fi/tiedotteet/2026/03/04/tiedote-123 Päätös 2026/0142 "
        "kirjaamo@example.fi 04.03.2026 klo 10.15 +358 29 123 4567 Liite: https://example.fi/a.pdf"
    )
    assert detect_language(text).code == "fi"


def test_clean_removes_url_email_number() -> None:
    assert (
        clean_for_detection("Katso https://x.fi/a?b=1 tai kirjaamo@x.fi, puh. 029 123 4567.")
        == "Katso tai , puh."
    )


@pytest.mark.parametrize("detector", ["lingua", "langdetect"])
@pytest.mark.parametrize(
    "body", ["https://agency.example.ee/dokumendid/2026-0142.pdf", "2026/0142", "", "   "]
)
def test_nothing_to_detect_inferred(body: str, detector: str) -> None:
    result = detect_language(body, "et", detector=detector)
    assert result.code == "et"
    assert result.method == "inferred"
    assert result.confidence <= 0.1


def test_nothing_to_detect_without_declaration() -> None:
    result = detect_language("12345")
    assert result.code is None
    assert result.confidence == 0.0


def test_all_caps_estonian() -> None:
    assert detect_language("TEATE: SILLA REMONT ALGAB TEISIPÄEVAL").code == "et"


def test_all_caps_english_langdetect() -> None:
    text = "THE BRIDGE WILL BE CLOSED TO ALL TRAFFIC FOR REPAIRS UNTIL THE END OF THE MONTH"
    assert detect_language(text, detector="langdetect").code == "en"


def test_unknown_detector_rejected() -> None:
    with pytest.raises(ValueError, match="unknown"):
        detect_language("Tiedote", detector="fasttext")


def test_candidates_restrict_result() -> None:
    assert detect_language(LONG["fi"], candidates=("sv", "en")).code in ("sv", "en")


def test_langdetect_deterministic_across_processes() -> None:
    script = (
        "import json\n"
        "from transforms.language import detect_language\n"
        "texts = ['Tiedote', 'Pressiteade', 'Info', 'Teade', 'Avaleht', 'Ilmoitus', 'Nyheter']\n"
        "print(json.dumps([detect_language(t, detector='langdetect').code for t in texts]))\n"
    )
    outputs = []
    for hash_seed in ("1", "2", "3"):
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        completed = subprocess.run(
            [sys.executable, "-c", script],
            cwd=PROJECT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1] == outputs[2]


def test_same_answer_on_repeat() -> None:
    answers = {detect_language("Teade", detector="langdetect").code for _ in range(20)}
    assert len(answers) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.example.se/sv/nyheter/1", "sv"),
        ("https://www.example.fi/fi/", "fi"),
        ("https://www.example.fi/en-gb/news", "en"),
        ("https://www.example.fi/uutiset/1", None),
        ("https://www.example.fi/ab/1", None),
        (None, None),
    ],
)
def test_declared_language_from_url(url: str | None, expected: str | None) -> None:
    assert declared_language_from_url(url) == expected


# Language codes


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("zh-CN", "zh-cn"),
        ("zh_cn", "zh-cn"),
        ("iw", "he"),
        ("nb", "no"),
        ("EN-GB", "en"),
        ("fi-FI", "fi"),
        ("PT-BR", "pt-br"),
        ("", None),
    ],
)
def test_normalise_code(code: str, expected: str | None) -> None:
    assert langcodes.normalise_code(code) == expected


@pytest.mark.parametrize(
    ("code", "provider", "expected"),
    [
        ("zh-cn", "google", "zh-CN"),
        ("he", "google", "iw"),
        ("en", "deepl", "EN-GB"),
        ("pt-br", "deepl", "PT-BR"),
        ("fi", "deepl", "FI"),
        ("fi", "mymemory", "fi-FI"),
        ("no", "microsoft", "nb"),
        ("zh-cn", "microsoft", "zh-Hans"),
        ("fi", "libre", "fi"),
    ],
)
def test_to_provider(code: str, provider: str, expected: str) -> None:
    assert langcodes.to_provider(code, provider) == expected


def test_deepl_source_has_no_variant() -> None:
    assert langcodes.to_provider("en", "deepl", role="source") == "EN"


def test_from_provider() -> None:
    assert langcodes.from_provider("EN-GB", "deepl") == "en"


def test_lingua_round_trip() -> None:
    assert langcodes.from_lingua(langcodes.to_lingua("lv")) == "lv"


def test_unknown_provider_rejected() -> None:
    with pytest.raises(ValueError, match="unknown"):
        langcodes.to_provider("fi", "babelfish")


# Field cases


def test_case_short_titles(cases_dir: Path) -> None:
    lines = (cases_dir / "BR-10.txt").read_text(encoding="utf-8").splitlines()
    titles = [line for line in lines if line.strip() and not line.startswith("#")]
    assert [detect_language(title).code for title in titles] == ["fi", "et", "et"]


def test_case_url_or_number_bodies(cases_dir: Path) -> None:
    lines = (cases_dir / "BR-11.txt").read_text(encoding="utf-8").splitlines()
    bodies = [line for line in lines if not line.startswith("#")]
    results = [detect_language(body, "et", detector="langdetect") for body in bodies]
    assert [(result.code, result.method) for result in results] == [("et", "inferred")] * len(
        bodies
    )
