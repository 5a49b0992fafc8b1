"""Connectors: fetch the catalog's sources politely and turn their documents into raw items.

`ingest_source` fetches one source and stores its new raw items and health; `check_source` does
the fetch and read without storing anything. `HttpFetcher` is the one HTTP client they use.
"""

from connectors.health import alert_operators
from connectors.http import FetchedDocument, HttpFetcher
from connectors.ingest import SourceReport, check_source, ingest_source

__all__ = [
    "FetchedDocument",
    "HttpFetcher",
    "SourceReport",
    "alert_operators",
    "check_source",
    "ingest_source",
]
