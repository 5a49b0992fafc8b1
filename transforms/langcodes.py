"""Language codes of the project, the detectors and the translation providers.

The project stores ISO 639-1 codes in lower case (`fi`, `sv`, `et`, `lv`, `en`, `ru`, `uk`), with a
region only where it changes the written language (`zh-cn`, `zh-tw`, `pt-br`). Detectors and
providers spell the same languages differently: langdetect returns `zh-cn`, Google wants `zh-CN` and
`iw` for Hebrew, MyMemory wants a region (`fi-FI`), DeepL wants upper case and `EN-GB` rather than
the deprecated `EN`, lingua uses its own enum. Every conversion goes through this module.
"""

from __future__ import annotations

from lingua import IsoCode639_1, Language

PROVIDERS = ("google", "deepl", "libre", "mymemory", "microsoft")

# Old or alternative codes that mean a project code.
_ALIASES = {
    "iw": "he",
    "ji": "yi",
    "in": "id",
    "jw": "jv",
    "nb": "no",
    "nn": "no",
    "zh": "zh-cn",
    "zh-hans": "zh-cn",
    "zh-sg": "zh-cn",
    "zh-hant": "zh-tw",
    "zh-hk": "zh-tw",
    "pt-pt": "pt",
    "en-gb": "en",
    "en-us": "en",
    "fil": "tl",
}

# Regions that name a different written language and so are kept in the project code.
_KEPT_REGIONS = frozenset({"zh-cn", "zh-tw", "pt-br"})

_GOOGLE = {"he": "iw", "zh-cn": "zh-CN", "zh-tw": "zh-TW", "pt-br": "pt", "no": "no"}
_DEEPL = {"en": "EN-GB", "pt": "PT-PT", "pt-br": "PT-BR", "zh-cn": "ZH", "zh-tw": "ZH", "no": "NB"}
_DEEPL_SOURCE = {"pt-br": "PT", "zh-cn": "ZH", "zh-tw": "ZH", "no": "NB"}
_LIBRE = {"zh-cn": "zh", "zh-tw": "zt", "pt-br": "pt", "no": "nb"}
_MICROSOFT = {"zh-cn": "zh-Hans", "zh-tw": "zh-Hant", "pt-br": "pt", "no": "nb", "tl": "fil"}
_MYMEMORY = {
    "en": "en-GB",
    "fi": "fi-FI",
    "sv": "sv-SE",
    "et": "et-EE",
    "lv": "lv-LV",
    "lt": "lt-LT",
    "ru": "ru-RU",
    "uk": "uk-UA",
    "de": "de-DE",
    "he": "he-IL",
    "no": "nb-NO",
    "pt": "pt-PT",
    "pt-br": "pt-BR",
    "zh-cn": "zh-CN",
    "zh-tw": "zh-TW",
}


def normalise_code(code: str | None) -> str | None:
    """Return the project code for any spelling of a language, or None for an empty value.

    Accepts `fi`, `FI`, `fi-FI`, `fi_FI`, `iw`, `nb`, `zh-CN`, `EN-GB` and the like. A region is
    dropped unless it names a different written language (`zh-cn`, `zh-tw`, `pt-br`).
    """
    if code is None:
        return None
    cleaned = code.strip().replace("_", "-").lower()
    if not cleaned:
        return None

    if cleaned in _ALIASES:
        return _ALIASES[cleaned]
    if cleaned in _KEPT_REGIONS:
        return cleaned

    primary = cleaned.split("-", 1)[0]
    return _ALIASES.get(primary, primary)


def from_lingua(language: Language) -> str:
    """Return the project code of a lingua `Language`."""
    return normalise_code(language.iso_code_639_1.name) or ""


def to_lingua(code: str) -> Language:
    """Return the lingua `Language` for a project code; raise ValueError when lingua lacks it."""
    normalised = normalise_code(code) or ""
    primary = {"no": "nb"}.get(normalised, normalised).split("-", 1)[0]
    try:
        iso = getattr(IsoCode639_1, primary.upper())
    except AttributeError as error:
        raise ValueError(
            f"language {code!r} is not supported by lingua; remove it from the candidates"
        ) from error
    return Language.from_iso_code_639_1(iso)


def from_langdetect(code: str) -> str:
    """Return the project code of a langdetect result (`zh-cn`, `no`, ...)."""
    return normalise_code(code) or ""


def to_langdetect(code: str) -> str:
    """Return langdetect's profile name for a project code."""
    normalised = normalise_code(code) or ""
    return {"he": "he", "no": "no"}.get(normalised, normalised)


def to_provider(code: str, provider: str, *, role: str = "target") -> str:
    """Return the code that `provider` expects for a project code.

    `role` is `source` or `target`, because DeepL takes a regional variant only as a target.
    """
    normalised = normalise_code(code)
    if normalised is None:
        raise ValueError("language code is empty; a translation needs a source and a target")

    if provider == "google":
        return _GOOGLE.get(normalised, normalised)
    if provider == "deepl":
        table = _DEEPL if role == "target" else _DEEPL_SOURCE
        return table.get(normalised, normalised.split("-", 1)[0].upper())
    if provider == "libre":
        return _LIBRE.get(normalised, normalised)
    if provider == "microsoft":
        return _MICROSOFT.get(normalised, normalised)
    if provider == "mymemory":
        return _MYMEMORY.get(normalised, normalised)
    raise ValueError(
        f"translation provider {provider!r} is unknown; use one of {', '.join(PROVIDERS)}"
    )


def from_provider(code: str, provider: str) -> str:
    """Return the project code of a code a provider returned (`EN-GB`, `zh-Hans`, `iw`)."""
    if provider not in PROVIDERS:
        raise ValueError(
            f"translation provider {provider!r} is unknown; use one of {', '.join(PROVIDERS)}"
        )
    if provider == "libre" and code.strip().lower() == "zt":
        return "zh-tw"
    return normalise_code(code) or ""
