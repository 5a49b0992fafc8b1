"""The Starlette application: the API endpoints, the newsletter pages and the feed files.

Routes, first match wins:

    GET /                     links to the feeds, the notices and this description
    GET /health               database check
    GET /openapi.json         OpenAPI 3.1 description
    GET /notices              filtered, paginated notices
    GET /notices/{notice_id}  one notice
    (newsletter routes, when `publishers.newsletter.web` is installed)
    GET /<feed path>          feed.json, feed-2.xml, regions/FI.json, regions/FI.2.json, ... from the output folder

The app only reads: it writes neither the store nor the output folder, and no setting is shown.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from noticeboard.catalog import Catalog
from noticeboard.errors import ConfigError
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.web.access_log import AccessLogMiddleware
from noticeboard.web.api import NoticeEndpoints, conditional_response, error_response
from publishers.jsonfeed import FeedContext

logger = logging.getLogger(__name__)

FEED_PATH = re.compile(
    r"^(?:(?:regions|topics|languages)/)?[A-Za-z0-9][A-Za-z0-9_-]*(?:\.\d+)?\.(json|xml)$"
)
MEDIA_TYPES = {"json": "application/feed+json", "xml": "application/atom+xml"}


class FeedFiles:
    """Serves the feed files of the output folder, with ETags."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = Path(output_dir)

    def serve(self, request: Request) -> Response:
        """Return one feed file, or 304 when the client's ETag still matches."""
        relative = request.path_params["path"]
        match = FEED_PATH.match(relative)
        if match is None:
            return error_response(
                request, 404, f"{relative!r} is not a feed path; see /openapi.json"
            )
        try:
            body = (self.output_dir / relative).read_bytes()
        except FileNotFoundError:
            return error_response(
                request, 404, f"feed {relative!r} not found; run `noticeboard feed` to write feeds"
            )
        return conditional_response(request, body, MEDIA_TYPES[match.group(1)])


def _index(context: FeedContext) -> Route:
    def index(request: Request) -> Response:
        return JSONResponse(
            {
                "feed": context.feed_url("feed.json"),
                "atom": context.feed_url("feed.xml"),
                "notices": f"{context.base_url}/notices",
                "openapi": f"{context.base_url}/openapi.json",
            }
        )

    return Route("/", index, methods=["GET"])


def _newsletter_routes(store: Store, settings: Settings) -> list[BaseRoute]:
    try:
        from publishers.newsletter.web import routes
    except ImportError as error:
        logger.info("newsletter_routes_skipped reason=%s", error)
        return []
    try:
        return list(routes(store, settings))
    except ConfigError as error:
        logger.error("newsletter_routes_skipped reason=config_error error=%s", error)
        return []


def create_app(store: Store, settings: Settings, catalog: Catalog | None = None) -> Starlette:
    """Build the read-only API over `store` and the feed files in `settings.output_dir`."""
    context = FeedContext.create(settings.public_base_url, catalog)
    endpoints = NoticeEndpoints(store, settings, context)

    routes: list[BaseRoute] = [
        _index(context),
        Route("/health", endpoints.health, methods=["GET"]),
        Route("/openapi.json", endpoints.openapi, methods=["GET"]),
        Route("/notices", endpoints.list_notices, methods=["GET"]),
        Route("/notices/{notice_id}", endpoints.get_notice, methods=["GET"]),
    ]
    routes.extend(_newsletter_routes(store, settings))
    routes.append(Route("/{path:path}", FeedFiles(settings.output_dir).serve, methods=["GET"]))

    logger.info("app_created output=%s routes=%d", settings.output_dir, len(routes))
    return Starlette(routes=routes, middleware=[Middleware(AccessLogMiddleware)])
