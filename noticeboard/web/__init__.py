"""The read-only HTTP API served by `noticeboard serve`."""

from noticeboard.web.app import create_app

__all__ = ["create_app"]
