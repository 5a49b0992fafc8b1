"""Message catalogues and Jinja2 environments of the newsletter pages and mails.

The catalogues are the `.po` files in `locale/<language>/LC_MESSAGES/newsletter.po`. They are
compiled in memory with Babel when first used, so no compiled `.mo` file is kept in the
repository and a `.po` edit takes effect on the next start.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

from publishers.newsletter.vocabulary import LANGUAGES, Region

PACKAGE_DIR = Path(__file__).resolve().parent
LOCALE_DIR = PACKAGE_DIR / "locale"
TEMPLATE_DIR = PACKAGE_DIR / "templates"
DOMAIN = "newsletter"

# English names of topics, used as msgids so that each catalogue translates them.
TOPIC_LABELS = {
    "residence-permits": "Residence permits",
    "citizenship": "Citizenship",
    "asylum": "Asylum",
    "registration-id": "Registration and identity documents",
    "taxation": "Taxation",
    "social-security": "Social security",
    "employment": "Employment",
    "housing": "Housing",
    "healthcare": "Healthcare",
    "education": "Education",
    "childcare": "Childcare",
    "language-learning": "Language learning",
    "transport": "Transport",
    "public-safety": "Public safety",
    "service-disruption": "Service disruptions",
    "civic-participation": "Civic participation",
    "culture-leisure": "Culture and leisure",
    "business": "Business",
    "other": "Other",
}


@cache
def translations(language: str) -> NullTranslations:
    """Return the compiled catalogue of `language` (English, the source language, has none)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == "en" or not path.is_file():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


@cache
def environment(language: str, kind: str) -> Environment:
    """Return the Jinja2 environment of `kind` (`web` or `mail`) with `language` installed.

    HTML templates are autoescaped; the plain-text mail templates (`.txt`) are not.
    """
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR / kind),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["language"] = language
    env.globals["languages"] = LANGUAGES
    env.globals["language_name"] = language_name
    env.globals["topic_label"] = lambda slug: topic_label(slug, language)
    env.globals["region_label"] = lambda region: region_label(region, language)
    env.globals["region_code_label"] = lambda code: region_code_label(code, language)
    return env


def gettext(language: str, message: str) -> str:
    return translations(language).gettext(message)


def language_name(code: str, in_language: str | None = None) -> str:
    """Return the name of language `code`, in its own language unless `in_language` is given.

    A self-name stands alone in the language menu, so it is capitalised. A name in another
    language runs inside a sentence, so it keeps the CLDR case: Finnish in Estonian is "soome".
    """
    if in_language is not None:
        return Locale.parse(code).get_display_name(Locale.parse(in_language)) or code
    name = Locale.parse(code).get_display_name(Locale.parse(code)) or code
    return name[:1].upper() + name[1:]


def topic_label(slug: str, language: str) -> str:
    english = TOPIC_LABELS.get(slug)
    return gettext(language, english) if english else slug


def region_label(region: Region, language: str) -> str:
    """Return the region's name in `language`, falling back to English, then to the code.

    Country names missing from the region data come from Babel's CLDR territory names.
    """
    if region.names.get(language):
        return region.names[language]
    if "-" not in region.code:
        territories = Locale.parse(language).territories
        if region.code in territories:
            return territories[region.code]
    return region.names.get("en") or region.code


def region_code_label(code: str, language: str) -> str:
    from publishers.newsletter.vocabulary import regions

    for region in regions():
        if region.code == code:
            return region_label(region, language)
    return code
