"""Language detection of notice text, with the language the source declared as a hint.

Two detectors sit behind `detect_language`: lingua-language-detector (the default, restricted to
the candidate languages) and langdetect (with a fixed seed, so the same text gets the same result
in every run and process). Both are built once per process and candidate set, on first use.

Before detection the text loses URLs, e-mail addresses and numbers, because they carry no language
and langdetect raises "No features in text" on a body that has nothing else. Short or all-caps
text is lower-cased, because langdetect ignores most n-grams inside capitalised words.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from noticeboard.models import LanguageResult
from transforms import langcodes

if TYPE_CHECKING:
    from lingua import Language

logger = logging.getLogger(__name__)

DEFAULT_CANDIDATES = ("fi", "sv", "et", "lv", "lt", "en", "ru", "uk", "de")
DETECTORS = ("lingua", "langdetect")

# Text with fewer letters than this is "short": the declared language wins and the confidence is
# capped, because one or two words rarely decide between Finnish and Estonian.
SHORT_TEXT_LETTERS = 40
SHORT_TEXT_CONFIDENCE_CAP = 0.5
# Below this confidence a detection on long text does not overrule a declared language.
OVERRULE_CONFIDENCE = 0.8
# Confidence recorded when the language comes from the declaration alone.
INFERRED_CONFIDENCE = 0.1
LANGDETECT_SEED = 0
# Longer text adds little accuracy but costs time, so only the start is examined. On the
# benchmark's generated notices lingua took 0.21 ms of CPU on 200 characters, 0.33 ms on 400 and
# 0.55 ms on 2,000, and the labelled set (texts of up to 345 characters) scored the same at 200.
MAX_DETECTION_CHARS = 200
# Cleaning removes URLs and numbers, so it starts from a longer slice than detection needs.
MAX_CLEANED_CHARS = 4 * MAX_DETECTION_CHARS

_URL = re.compile(r"(?:https?://|ftp://|www\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NUMBER = re.compile(r"[+-]?\d[\d.,:/\-–]*")
_LANGUAGE_PATH = re.compile(r"^/([a-z]{2})(?:[-_][a-z]{2})?(?:/|$)", re.IGNORECASE)


def detect_language(
    text: str,
    declared: str | None = None,
    *,
    detector: str = "lingua",
    candidates: Sequence[str] = DEFAULT_CANDIDATES,
) -> LanguageResult:
    """Detect the language of `text`, preferring the `declared` language where it is plausible.

    `method` is `declared` when the declared language is kept, because the detector agrees or the
    text is too short to overrule it. It is `detected` when the detector decides. It is `inferred`
    when the text has nothing to detect (empty, only a URL or a number), so the declared language
    is used as it is. Odd text never raises, but an unknown `detector` raises ValueError.
    """
    declared_code = langcodes.normalise_code(declared)
    cleaned = clean_for_detection((text or "")[:MAX_CLEANED_CHARS])[:MAX_DETECTION_CHARS]
    letters = sum(map(str.isalpha, cleaned))

    if letters == 0:
        return LanguageResult(
            code=declared_code,
            confidence=INFERRED_CONFIDENCE if declared_code else 0.0,
            method="inferred",
        )

    short = letters < SHORT_TEXT_LETTERS
    if short or not any(character.islower() for character in cleaned):
        cleaned = cleaned.lower()

    scores = _score(cleaned, detector, tuple(candidates))
    if not scores:
        return LanguageResult(
            code=declared_code,
            confidence=INFERRED_CONFIDENCE if declared_code else 0.0,
            method="inferred",
        )

    best_code, best_confidence = max(scores.items(), key=lambda item: item[1])
    return _decide(best_code, best_confidence, scores, declared_code, short=short)


def clean_for_detection(text: str) -> str:
    """Return `text` without URLs, e-mail addresses and numbers, with whitespace collapsed."""
    text = text or ""
    # A substitution is skipped when it cannot match, because every URL contains "://" or "www."
    # and every e-mail address contains "@". The checks cost at most a tenth of the substitutions.
    if "://" in text or "www." in text.lower():
        text = _URL.sub(" ", text)
    if "@" in text:
        text = _EMAIL.sub(" ", text)
    without_numbers = _NUMBER.sub(" ", text)
    # str.split() splits on the same characters as \s (checked over every code point in Python
    # 3.11), so this equals substituting runs of \s+ with a space and stripping the ends.
    return " ".join(without_numbers.split())


def declared_language_from_url(url: str | None) -> str | None:
    """Return the language named by the first path segment of `url` (`/sv/`, `/fi/`, `/en-gb/`).

    Only the candidate languages count, so `/de/` in a German-language path segment of an unrelated
    site is accepted but `/ab/` (a section name) is not.
    """
    if not url:
        return None
    match = _LANGUAGE_PATH.match(urlsplit(url).path)
    if match is None:
        return None
    code = langcodes.normalise_code(match.group(1))
    return code if code in DEFAULT_CANDIDATES else None


def _decide(
    best_code: str,
    best_confidence: float,
    scores: dict[str, float],
    declared: str | None,
    *,
    short: bool,
) -> LanguageResult:
    cap = SHORT_TEXT_CONFIDENCE_CAP if short else 1.0

    if declared is None:
        return LanguageResult(
            code=best_code, confidence=min(best_confidence, cap), method="detected"
        )

    declared_confidence = scores.get(declared, 0.0)
    if best_code == declared:
        return LanguageResult(
            code=declared, confidence=min(best_confidence, cap), method="declared"
        )
    if short or best_confidence < OVERRULE_CONFIDENCE:
        return LanguageResult(
            code=declared, confidence=min(declared_confidence, cap), method="declared"
        )
    return LanguageResult(code=best_code, confidence=best_confidence, method="detected")


def _score(text: str, detector: str, candidates: tuple[str, ...]) -> dict[str, float]:
    if detector == "lingua":
        return _score_lingua(text, candidates)
    if detector == "langdetect":
        return _score_langdetect(text, candidates)
    raise ValueError(
        f"language detector {detector!r} is unknown; use one of {', '.join(DETECTORS)}"
    )


def _score_lingua(text: str, candidates: tuple[str, ...]) -> dict[str, float]:
    detector = _lingua_detector(candidates)
    values = detector.compute_language_confidence_values(text)
    return {_lingua_code(value.language): value.value for value in values}


@functools.cache
def _lingua_code(language: Language) -> str:
    # Cached because the conversion takes about 1 µs and runs once per candidate and text.
    return langcodes.from_lingua(language)


def _score_langdetect(text: str, candidates: tuple[str, ...]) -> dict[str, float]:
    from langdetect.lang_detect_exception import LangDetectException

    factory = _langdetect_factory(candidates)
    detector = factory.create()
    detector.append(text)
    try:
        probabilities = detector.get_probabilities()
    except LangDetectException as error:
        logger.debug("langdetect_no_features error=%s", error)
        return {}
    return {langcodes.from_langdetect(item.lang): item.prob for item in probabilities}


def warm_up(detector: str, candidates: Sequence[str] = DEFAULT_CANDIDATES) -> None:
    """Start loading the detector's language models in a background thread.

    lingua loads its models in about a second, with Python's global lock released, so the load
    can overlap with fetching and parsing. Detection then finds the models ready, or waits for
    the load to finish. Other detectors load fast enough on first use.
    """
    if detector != "lingua":
        return
    threading.Thread(
        target=_lingua_detector, args=(tuple(candidates),), name="lingua-warm-up", daemon=True
    ).start()


def _lingua_detector(candidates: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """Return the lingua detector of `candidates`, built with its models on first use."""
    with _LINGUA_LOCK:
        built = _LINGUA_DETECTORS.get(candidates)
        if built is None:
            from lingua import LanguageDetectorBuilder

            languages = [langcodes.to_lingua(code) for code in candidates]
            logger.debug("building detector=lingua candidates=%s", ",".join(candidates))
            builder = LanguageDetectorBuilder.from_languages(*languages)
            built = builder.with_preloaded_language_models().build()
            _LINGUA_DETECTORS[candidates] = built
        return built


# One lock for building, so a warm-up thread and a detecting thread never build the same detector
# twice. NOTE: a process forked while a warm-up holds the lock inherits it locked, so forked
# children must not detect languages (the ingest workers do not).
_LINGUA_LOCK = threading.Lock()
_LINGUA_DETECTORS: dict[tuple[str, ...], Any] = {}


@functools.cache
def _langdetect_factory(candidates: tuple[str, ...]):  # type: ignore[no-untyped-def]
    from importlib.resources import files

    from langdetect.detector_factory import DetectorFactory

    profiles = files("langdetect") / "profiles"
    documents = []
    for code in candidates:
        name = langcodes.to_langdetect(code)
        profile = profiles / name
        if not profile.is_file():
            raise ValueError(
                f"language {code!r} has no langdetect profile; remove it from the candidates"
            )
        documents.append(profile.read_text(encoding="utf-8"))

    # A private factory, so the candidates and the seed do not leak into other langdetect users.
    factory = DetectorFactory()
    factory.load_json_profile(documents)
    factory.seed = LANGDETECT_SEED
    logger.debug("building detector=langdetect candidates=%s", ",".join(candidates))
    return factory
