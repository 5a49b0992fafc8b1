"""The web access log masks the signed tokens of newsletter links."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from noticeboard.web.access_log import AccessLogMiddleware, mask_path


@pytest.mark.parametrize(
    ("path", "masked"),
    [
        ("/newsletter/unsubscribe/tok_3b9f0c2e7a", "/newsletter/unsubscribe/***"),
        ("/newsletter/confirm/abc.def.ghi", "/newsletter/confirm/***"),
        ("/newsletter/preferences/xyz/extra", "/newsletter/preferences/***/extra"),
        ("/notices/abc", "/notices/abc"),
    ],
)
def test_mask_path(path: str, masked: str) -> None:
    assert mask_path(path) == masked


def test_request_logged_without_token(caplog: pytest.LogCaptureFixture) -> None:
    async def page(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("ok")

    app = AccessLogMiddleware(Starlette(routes=[Route("/newsletter/unsubscribe/{token}", page)]))
    caplog.set_level(logging.INFO, logger="noticeboard.web.access_log")

    response = TestClient(app).get("/newsletter/unsubscribe/secret-token-123?x=1")

    assert response.status_code == 200
    assert "secret-token-123" not in caplog.text
    assert "path=/newsletter/unsubscribe/*** status=200" in caplog.text
