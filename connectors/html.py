"""HTML listing pages, read with BeautifulSoup and the catalog's CSS selectors.

A listing page contains one element per notice (`selectors.item`), and inside it the title, the link
and optionally the date and a summary. Links are resolved against the page's final URL, or its
`<base href>`. The `selectors.next_page` link is followed up to `source.max_pages` pages. With
`source.fetch_articles`, each notice's own page is fetched too and its main content kept as the
body: `selectors.body` when given, else `<main>`, `[role=main]` or the first `<article>`, without
navigation, asides, footers, forms, scripts or cookie banners.

A page that loads but whose item selector matches nothing, or where most matched items lack a title
or a link, raises `LayoutChangedError`: the site changed its markup, which is not the same as
"no news".
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import soupsieve
from bs4 import BeautifulSoup, Tag

from connectors._language import primary_language
from connectors.http import FetchedDocument, HttpFetcher
from noticeboard.catalog import Selectors, Source
from noticeboard.errors import ParseError, SourceError
from noticeboard.models import RawItem

logger = logging.getLogger(__name__)

PARSER = "lxml"
URL_ATTRIBUTES = (
    ("a", "href"),
    ("img", "src"),
    ("source", "src"),
    ("video", "src"),
    ("audio", "src"),
)
LINK_SCHEMES = ("http", "https")
BOILERPLATE_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "form",
    "nav",
    "aside",
    "footer",
    "button",
    "svg",
)
BOILERPLATE_ROLES = frozenset(
    {"navigation", "banner", "contentinfo", "complementary", "dialog", "alertdialog", "search"}
)
BOILERPLATE_NAMES = re.compile(
    r"cookie|consent|gdpr|breadcrumb|share|social|skip-?link|newsletter|related|sidebar|site-?header|site-?footer",
    re.IGNORECASE,
)
MAIN_CONTENT = "main, [role=main], article"


class LayoutChangedError(ParseError):
    """The page loaded, but the catalog's selectors no longer find the notices on it."""


@dataclass
class ListingPage:
    """The items found on one listing page and what the selectors matched."""

    items: list[RawItem]
    matched: int
    incomplete: int
    next_url: str | None
    language: str | None


@dataclass
class ScrapeResult:
    """Items of all listing pages of a source; `complete` is false when a later page failed."""

    items: list[RawItem]
    pages: int
    warnings: list[str] = field(default_factory=list)
    complete: bool = True


@dataclass
class Article:
    """The main content of a notice's own page."""

    body_html: str
    language: str | None
    alternates: dict[str, str]


def scrape_listing(first: FetchedDocument, source: Source, fetcher: HttpFetcher) -> ScrapeResult:
    """Read the items of a listing page and of its next pages, then their articles if configured."""
    selectors = _selectors(source, first.final_url)
    page = parse_listing(first.text, first.final_url, source)
    check_layout(page, source, first.final_url)

    result = ScrapeResult(items=list(page.items), pages=1)
    _note_incomplete(result, page, source, first.final_url)
    visited = {first.final_url}
    while page.next_url and result.pages < source.max_pages and page.next_url not in visited:
        next_url = page.next_url
        visited.add(next_url)
        try:
            document = fetcher.fetch(next_url, source_id=source.id)
        except SourceError as error:
            logger.warning("page_failed source=%s url=%s error=%s", source.id, next_url, error)
            result.warnings.append(f"listing page {next_url} failed: {error.cause}")
            result.complete = False
            break

        page = parse_listing(document.text, document.final_url, source)
        result.pages += 1
        if page.matched == 0:
            result.warnings.append(f"listing page {document.final_url} has no items")
            break
        result.items.extend(page.items)
        _note_incomplete(result, page, source, document.final_url)

    if source.fetch_articles:
        _add_articles(result, source, selectors, fetcher)
    return result


def _note_incomplete(result: ScrapeResult, page: ListingPage, source: Source, url: str) -> None:
    """Log and count the items of a page skipped for a missing title or http(s) link."""
    if not page.incomplete:
        return
    logger.warning(
        "items_skipped source=%s url=%s skipped=%d reason=no title or no http(s) link",
        source.id,
        url,
        page.incomplete,
    )
    result.warnings.append(
        f"listing page {url}: skipped {page.incomplete} of {page.matched} items without a title "
        "or an http(s) link"
    )


def parse_listing(text: str, page_url: str, source: Source) -> ListingPage:
    """Read the items on one listing page with the source's selectors."""
    selectors = _selectors(source, page_url)
    soup = BeautifulSoup(text, PARSER)
    base = _base_url(soup, page_url)
    language = primary_language(_html_language(soup))

    items: list[RawItem] = []
    matched = soup.select(selectors.item)
    incomplete = 0
    for element in matched:
        item = _read_item(element, selectors, base, source.id, language)
        if item.title and item.url:
            items.append(item)
        else:
            incomplete += 1
            logger.debug(
                "item_incomplete source=%s url=%s title=%s", source.id, page_url, bool(item.title)
            )

    next_url = None
    if selectors.next_page:
        next_link = soup.select_one(selectors.next_page)
        next_url = _link_of(next_link, base) if next_link is not None else None

    return ListingPage(
        items=items,
        matched=len(matched),
        incomplete=incomplete,
        next_url=next_url,
        language=language,
    )


def check_layout(page: ListingPage, source: Source, url: str) -> None:
    """Raise `LayoutChangedError` when the selectors match nothing or most items are incomplete."""
    selectors = _selectors(source, url)
    if page.matched == 0:
        raise LayoutChangedError(
            source.id,
            url,
            f"item selector {selectors.item!r} matches nothing; the page layout may have changed",
        )
    if page.incomplete * 2 > page.matched:
        raise LayoutChangedError(
            source.id,
            url,
            f"{page.incomplete} of {page.matched} items lack a title ({selectors.title!r}) "
            "or a link "
            f"({selectors.link!r}); the page layout may have changed",
        )


def extract_article(text: str, page_url: str, selectors: Selectors | None = None) -> Article:
    """Return the main content of an article page as HTML, with its links made absolute."""
    soup = BeautifulSoup(text, PARSER)
    base = _base_url(soup, page_url)
    language = primary_language(_html_language(soup))
    alternates = _page_alternates(soup, base)

    root = soup.select_one(selectors.body) if selectors and selectors.body else None
    root = root or soup.select_one(MAIN_CONTENT) or soup.body or soup
    _remove_boilerplate(root)
    _absolutise(root, base)
    body = root.decode_contents().strip() if isinstance(root, Tag) else str(root)
    return Article(body_html=body, language=language, alternates=alternates)


def _add_articles(
    result: ScrapeResult, source: Source, selectors: Selectors, fetcher: HttpFetcher
) -> None:
    for item in result.items:
        if not item.url:
            continue
        try:
            document = fetcher.fetch(item.url, source_id=source.id)
        except SourceError as error:
            logger.warning("article_failed source=%s url=%s error=%s", source.id, item.url, error)
            result.warnings.append(f"article {item.url} failed: {error.cause}")
            continue
        article = extract_article(document.text, document.final_url, selectors)
        item.body_html = article.body_html or None
        item.language = article.language or item.language
        item.alternates = {**item.alternates, **article.alternates}


def _read_item(
    element: Tag, selectors: Selectors, base: str, source_id: str, language: str | None
) -> RawItem:
    title_element = _select_within(element, selectors.title)
    link_element = _select_within(element, selectors.link)
    date_element = _select_within(element, selectors.date) if selectors.date else None
    summary_element = _select_within(element, selectors.summary) if selectors.summary else None

    summary = None
    if summary_element is not None:
        _absolutise(summary_element, base)
        summary = summary_element.decode_contents().strip() or None

    published = None
    if date_element is not None:
        published = str(date_element.get("datetime") or "").strip() or _text_of(date_element)

    return RawItem(
        source_id=source_id,
        url=_link_of(link_element, base) if link_element is not None else None,
        title=_text_of(title_element) if title_element is not None else None,
        summary_html=summary,
        published_raw=published,
        language=language,
    )


def _select_within(element: Tag, selector: str) -> Tag | None:
    """Select inside the item, or the item itself when it matches (an `<a>` item with its link)."""
    found = element.select_one(selector)
    if found is None and element.css.match(selector):
        return element
    return found


def _link_of(element: Tag, base: str) -> str | None:
    anchor = element if element.name == "a" else element.find("a")
    if not isinstance(anchor, Tag):
        return None
    href = str(anchor.get("href") or "").strip()
    if not href:
        return None
    url = urljoin(base, href)
    return url if urlsplit(url).scheme in LINK_SCHEMES else None


def _text_of(element: Tag) -> str | None:
    text = " ".join(element.get_text(" ", strip=True).split())
    return text or None


def _base_url(soup: BeautifulSoup, page_url: str) -> str:
    base = soup.find("base", href=True)
    if isinstance(base, Tag):
        return urljoin(page_url, str(base["href"]))
    return page_url


def _html_language(soup: BeautifulSoup) -> str | None:
    html = soup.find("html")
    if isinstance(html, Tag):
        value = html.get("lang") or html.get("xml:lang")
        return str(value) if value else None
    return None


def _page_alternates(soup: BeautifulSoup, base: str) -> dict[str, str]:
    alternates: dict[str, str] = {}
    for link in soup.find_all("link", hreflang=True, href=True):
        if "alternate" in (link.get("rel") or []):
            alternates[str(link["hreflang"]).strip().lower()] = urljoin(base, str(link["href"]))
    alternates.pop("x-default", None)
    return alternates


def _remove_boilerplate(root: Tag | BeautifulSoup) -> None:
    for element in root.find_all(BOILERPLATE_TAGS):
        element.decompose()

    doomed: list[Tag] = []
    for element in root.find_all(True):
        role = str(element.get("role") or "").lower()
        names = " ".join([str(element.get("id") or ""), *(element.get("class") or [])])
        if role in BOILERPLATE_ROLES or (names.strip() and BOILERPLATE_NAMES.search(names)):
            doomed.append(element)
    for element in doomed:
        if not element.decomposed:
            element.decompose()


def _absolutise(root: Tag | BeautifulSoup, base: str) -> None:
    for tag_name, attribute in URL_ATTRIBUTES:
        for element in root.find_all(tag_name):
            value = element.get(attribute)
            if value:
                element[attribute] = urljoin(base, str(value).strip())


def _selectors(source: Source, url: str) -> Selectors:
    if source.selectors is None:
        raise ParseError(source.id, url, "an html source needs selectors in the catalog")
    for name, selector in dataclasses.asdict(source.selectors).items():
        if not selector:
            continue
        try:
            soupsieve.compile(selector)
        except soupsieve.SelectorSyntaxError as error:
            first_line = str(error).splitlines()[0]
            raise ParseError(
                source.id,
                url,
                f"selectors.{name} {selector!r} is not valid CSS ({first_line}); "
                "fix it in the catalog",
            ) from error
    return source.selectors
