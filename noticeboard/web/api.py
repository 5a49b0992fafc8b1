"""The `/notices` endpoints, `/health` and the OpenAPI description.

Every response is JSON with a strong ETag over its bytes; a request whose `If-None-Match` names that
ETag gets 304 and no body. Notices are the published ones (ready, not withdrawn, one per duplicate
group) as JSON Feed items, so the API shows the same fields as the feed files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Select, and_, exists, or_, select, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice, NoticeTag, Translation
from noticeboard.views import load_views
from publishers.jsonfeed import FeedContext, build_item
from publishers.selection import is_published

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
CACHE_CONTROL = "public, max-age=60"


class BadRequest(ValueError):
    """A query parameter is invalid; the message names it and the expected form."""


def json_response(request: Request, document: Any, status: int = 200) -> Response:
    """Return `document` as JSON with an ETag, or 304 when the client already has these bytes."""
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return conditional_response(request, body, "application/json", status)


def conditional_response(
    request: Request, body: bytes, media_type: str, status: int = 200
) -> Response:
    """Return `body` with a strong ETag, or 304 when `If-None-Match` names it."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if status == 200 and _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status, media_type=media_type, headers=headers)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [part.strip() for part in header.split(",")]
    # If-None-Match uses weak comparison (RFC 9110, section 13.1.2), so W/"x" matches "x".
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)


def error_response(request: Request, status: int, message: str) -> Response:
    """Return a JSON error object."""
    body = json.dumps({"error": message}).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json")


@dataclass(frozen=True)
class NoticeQuery:
    """The filters and page position of a `/notices` request."""

    region: str | None = None
    topic: str | None = None
    language: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT
    cursor: tuple[datetime | None, str] | None = None

    @classmethod
    def from_params(cls, params: Any) -> NoticeQuery:
        """Read and check the query parameters, raising `BadRequest` naming the invalid one."""
        limit_raw = params.get("limit", str(DEFAULT_LIMIT))
        if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= MAX_LIMIT:
            raise BadRequest(
                f"limit={limit_raw!r} is invalid; use a whole number from 1 to {MAX_LIMIT}"
            )
        return cls(
            region=params.get("region") or None,
            topic=params.get("topic") or None,
            language=params.get("language") or None,
            source=params.get("source") or None,
            since=_parse_time("since", params.get("since")),
            until=_parse_time("until", params.get("until")),
            limit=int(limit_raw),
            cursor=decode_cursor(params["cursor"]) if params.get("cursor") else None,
        )

    def statement(self) -> Select[tuple[Notice]]:
        """Select one page (plus one row, to know whether another page follows)."""
        statement = select(Notice).where(is_published())
        if self.region:
            statement = statement.where(_has_tag("region", self.region))
        if self.topic:
            statement = statement.where(_has_tag("topic", self.topic))
        if self.language:
            translated = exists().where(
                Translation.notice_id == Notice.id,
                Translation.language == self.language,
                Translation.status == "done",
            )
            statement = statement.where(or_(Notice.language == self.language, translated))
        if self.source:
            statement = statement.where(Notice.source_id == self.source)
        if self.since:
            statement = statement.where(Notice.published_at >= self.since)
        if self.until:
            statement = statement.where(Notice.published_at < self.until)
        if self.cursor:
            statement = statement.where(_after(*self.cursor))
        ordered = statement.order_by(Notice.published_at.desc().nulls_last(), Notice.id)
        return ordered.limit(self.limit + 1)

    def next_params(self, cursor: str) -> dict[str, str]:
        """Return the query parameters of the next page."""
        params = {
            "region": self.region,
            "topic": self.topic,
            "language": self.language,
            "source": self.source,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        shown = {key: value for key, value in params.items() if value}
        if self.limit != DEFAULT_LIMIT:
            shown["limit"] = str(self.limit)
        shown["cursor"] = cursor
        return shown


def _has_tag(kind: str, value: str) -> Any:
    return exists().where(
        NoticeTag.notice_id == Notice.id, NoticeTag.kind == kind, NoticeTag.value == value
    )


def _after(published: datetime | None, notice_id: str) -> Any:
    """Keyset condition: rows after (published, id) in `published DESC NULLS LAST, id` order."""
    if published is None:
        return and_(Notice.published_at.is_(None), Notice.id > notice_id)
    return or_(
        Notice.published_at < published,
        and_(Notice.published_at == published, Notice.id > notice_id),
        Notice.published_at.is_(None),
    )


def _parse_time(name: str, raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as error:
        raise BadRequest(
            f"{name}={raw!r} is not an ISO 8601 time; use e.g. 2026-03-04T09:00:00+02:00"
        ) from error
    if moment.tzinfo is None:
        raise BadRequest(f"{name}={raw!r} has no UTC offset; add one, e.g. Z or +02:00")
    return moment


def encode_cursor(published: datetime | None, notice_id: str) -> str:
    """Return the opaque cursor that points just after a notice."""
    raw = json.dumps([published.isoformat() if published else None, notice_id]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    """Read a cursor made by `encode_cursor`, raising `BadRequest` when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        published, notice_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        moment = datetime.fromisoformat(published) if published else None
    except (ValueError, TypeError, binascii.Error, UnicodeError) as error:
        raise BadRequest(
            f"cursor={cursor!r} is invalid; use the next_cursor of a previous response"
        ) from error
    if not isinstance(notice_id, str) or (moment is not None and moment.tzinfo is None):
        raise BadRequest(
            f"cursor={cursor!r} is invalid; use the next_cursor of a previous response"
        )
    return moment, notice_id


class NoticeEndpoints:
    """Request handlers bound to a store; Starlette runs these sync handlers in a thread pool."""

    def __init__(self, store: Store, settings: Settings, context: FeedContext) -> None:
        self.store = store
        self.settings = settings
        self.context = context

    def list_notices(self, request: Request) -> Response:
        """`GET /notices`: a page of published notices as JSON Feed items, newest first."""
        try:
            query = NoticeQuery.from_params(request.query_params)
        except BadRequest as error:
            return error_response(request, 400, str(error))

        with self.store.session() as session:
            notices = list(session.scalars(query.statement()))
            has_more = len(notices) > query.limit
            notices = notices[: query.limit]
            items = [
                build_item(view, self.context, query.language)
                for view in load_views(session, notices)
            ]

        document: dict[str, Any] = {"items": items, "next_cursor": None, "next_url": None}
        if has_more and notices:
            last = notices[-1]
            cursor = encode_cursor(last.published_at, last.id)
            document["next_cursor"] = cursor
            document["next_url"] = (
                f"{self.context.base_url}/notices?{urlencode(query.next_params(cursor))}"
            )
        return json_response(request, document)

    def get_notice(self, request: Request) -> Response:
        """`GET /notices/{notice_id}`: one published notice, optionally in `?language=`."""
        notice_id = request.path_params["notice_id"]
        language = request.query_params.get("language") or None
        with self.store.session() as session:
            notice = session.scalars(
                select(Notice).where(Notice.id == notice_id, is_published())
            ).first()
            if notice is None:
                return error_response(
                    request, 404, f"notice {notice_id!r} not found or not published"
                )
            item = build_item(load_views(session, [notice])[0], self.context, language)
        return json_response(request, item)

    def health(self, request: Request) -> Response:
        """`GET /health`: whether the database responds and the main feed exists."""
        feed_present = (self.settings.output_dir / "feed.json").is_file()
        try:
            with self.store.session() as session:
                session.execute(text("select 1"))
        except SQLAlchemyError as error:
            logger.error(
                "health_check_failed dialect=%s error=%s", self.store.dialect, type(error).__name__
            )
            body = {"status": "unavailable", "database": "unavailable", "feed": feed_present}
            return Response(json.dumps(body), status_code=503, media_type="application/json")
        body = {"status": "ok", "database": "ok", "feed": feed_present}
        return Response(
            json.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"}
        )

    def openapi(self, request: Request) -> Response:
        """`GET /openapi.json`: the OpenAPI 3.1 description of this API."""
        return json_response(request, openapi_document(self.context.base_url))


def openapi_document(base_url: str) -> dict[str, Any]:
    """Return the OpenAPI 3.1 description, written by hand to match the handlers above."""
    text_param = {"in": "query", "required": False, "schema": {"type": "string"}}
    time_param = {
        "in": "query",
        "required": False,
        "schema": {"type": "string", "format": "date-time"},
    }
    etag_header = {
        "ETag": {"description": "Strong validator of the body", "schema": {"type": "string"}}
    }
    not_modified = {"description": "The If-None-Match ETag still matches; no body"}
    error = {
        "description": "Invalid parameter",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    feed_file = {
        "get": {
            "summary": "A feed page written by `noticeboard feed`",
            "responses": {
                "200": {"description": "JSON Feed 1.1 or Atom 1.0", "headers": etag_header},
                "304": not_modified,
                "404": {"description": "No such feed file"},
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Noticeboard API",
            "version": "1",
            "description": "Read-only access to the notices of public authorities in Finland, "
            "Sweden, Estonia and Latvia, as JSON Feed 1.1 items.",
        },
        "servers": [{"url": base_url}],
        "paths": {
            "/notices": {
                "get": {
                    "summary": "Published notices, newest first",
                    "parameters": [
                        {
                            "name": "region",
                            "description": "Region code, e.g. FI or FI-18",
                            **text_param,
                        },
                        {"name": "topic", "description": "Topic slug", **text_param},
                        {
                            "name": "language",
                            "description": "ISO 639-1 code; items are shown in it where translated",
                            **text_param,
                        },
                        {"name": "source", "description": "Catalog source id", **text_param},
                        {
                            "name": "since",
                            "description": "Published at or after (with UTC offset)",
                            **time_param,
                        },
                        {
                            "name": "until",
                            "description": "Published before (with UTC offset)",
                            **time_param,
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_LIMIT,
                                "default": DEFAULT_LIMIT,
                            },
                        },
                        {
                            "name": "cursor",
                            "description": "next_cursor of the previous page",
                            **text_param,
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "One page of notices",
                            "headers": etag_header,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/NoticePage"}
                                }
                            },
                        },
                        "304": not_modified,
                        "400": error,
                    },
                }
            },
            "/notices/{notice_id}": {
                "get": {
                    "summary": "One published notice",
                    "parameters": [
                        {
                            "name": "notice_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "language", **text_param},
                    ],
                    "responses": {
                        "200": {
                            "description": "The notice",
                            "headers": etag_header,
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Item"}
                                }
                            },
                        },
                        "304": not_modified,
                        "404": {"description": "Not found, withdrawn or not yet published"},
                    },
                }
            },
            "/feed.json": feed_file,
            "/feed.xml": feed_file,
            "/{group}/{name}.json": feed_file,
            "/health": {
                "get": {
                    "summary": "Liveness and database check",
                    "responses": {
                        "200": {"description": "Healthy"},
                        "503": {"description": "Database unavailable"},
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This description",
                    "responses": {"200": {"description": "OpenAPI 3.1 document"}},
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "Item": {
                    "type": "object",
                    "description": "A JSON Feed 1.1 item with the `_noticeboard` extension",
                    "required": ["id", "url", "title", "content_text", "date_modified"],
                    "properties": {
                        "id": {"type": "string"},
                        "url": {"type": "string", "format": "uri"},
                        "title": {"type": "string"},
                        "content_html": {"type": "string"},
                        "content_text": {"type": "string"},
                        "summary": {"type": "string"},
                        "date_published": {"type": "string", "format": "date-time"},
                        "date_modified": {"type": "string", "format": "date-time"},
                        "language": {"type": "string"},
                        "authors": {
                            "type": "array",
                            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                        },
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "_noticeboard": {"type": "object"},
                    },
                },
                "NoticePage": {
                    "type": "object",
                    "required": ["items", "next_cursor", "next_url"],
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
                        "next_cursor": {"type": ["string", "null"]},
                        "next_url": {"type": ["string", "null"]},
                    },
                },
            }
        },
    }
