"""`noticeboard serve` as users run it: the installed command under uvicorn, in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import requests

from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers.feeds import write_feeds

STARTUP_SECONDS = 30
LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class ServerLog:
    """Reads a server's stderr in a thread, so the pipe never fills, and finds the bound port."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.port: int | None = None
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            match = LISTENING.search(line)
            if match and self.port is None:
                self.port = int(match.group(1))
                self.ready.set()
        self.ready.set()

    def text(self) -> str:
        return "".join(self.lines)


def test_serve_over_http(
    store: Store,
    settings: Settings,
    sqlite_url: str,
    tmp_path: Path,
    make_notice: Callable[..., str],
) -> None:
    make_notice("n1", regions=("FI",))
    write_feeds(store, settings, settings.output_dir)
    environment = {
        **os.environ,
        "NOTICEBOARD_DATABASE_URL": sqlite_url,
        "NOTICEBOARD_OUTPUT_DIR": str(settings.output_dir),
        "NOTICEBOARD_PUBLIC_BASE_URL": settings.public_base_url,
    }
    command = [str(Path(sys.executable).with_name("noticeboard")), "serve", "--host", "127.0.0.1"]

    # Port 0 lets the system pick a free port; uvicorn logs the one it bound.
    process = subprocess.Popen(
        [*command, "--port", "0"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = ServerLog(process)
    try:
        assert log.ready.wait(STARTUP_SECONDS), (
            f"no start within {STARTUP_SECONDS} s:\n{log.text()}"
        )
        assert log.port is not None, f"noticeboard serve exited:\n{log.text()}"
        base = f"http://127.0.0.1:{log.port}"
        health = requests.get(base + "/health", timeout=5)
        notices = requests.get(base + "/notices", timeout=5)
        feed = requests.get(base + "/feed.json", timeout=5)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.reader.join(timeout=5)

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "feed": True}
    assert notices.status_code == 200
    assert [item["id"] for item in notices.json()["items"]] == ["n1"]
    assert notices.headers["etag"]
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("application/feed+json")
    assert [item["id"] for item in feed.json()["items"]] == ["n1"]
    # uvicorn 0.29 and later re-raise the SIGTERM after a graceful shutdown, so the exit code is
    # -15; the log shows whether the shutdown was clean.
    assert "Finished server process" in log.text()
