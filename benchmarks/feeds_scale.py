"""Time and peak memory of `write_feeds` over 100,000 stored notices, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/feeds_scale.py [--notices N] [--skip-postgres]

Each notice gets one or two regions of 12 and one topic of 8; a third have an English
translation. Feeds are written twice in a fresh child process each time: the first run writes
every file, the second finds them unchanged. The child reports wall time, its own CPU time
(the database server's CPU is not counted) and its peak resident set size (`ru_maxrss`), which
includes the interpreter and SQLAlchemy. PostgreSQL runs against
127.0.0.1:5432 with trust authentication in a database created and dropped by this script.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

from noticeboard.settings import Settings  # noqa: E402
from noticeboard.store import open_store  # noqa: E402
from noticeboard.store.tables import Notice, NoticeTag, Translation  # noqa: E402

POSTGRES_ADMIN_URL = "postgresql+psycopg://root@127.0.0.1:5432/postgres"
REGIONS = [
    "FI",
    "FI-01",
    "FI-18",
    "FI-19",
    "SE",
    "SE-AB",
    "SE-M",
    "EE",
    "EE-37",
    "LV",
    "LV-RIX",
    "FI-11",
]
TOPICS = [
    "roadworks",
    "elections",
    "health",
    "environment",
    "housing",
    "transport",
    "education",
    "culture",
]
LANGUAGES = {"FI": "fi", "SE": "sv", "EE": "et", "LV": "lv"}
BATCH = 5_000


def fill(url: str, count: int) -> None:
    """Store `count` ready notices with tags and some translations."""
    store = open_store(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    body = "<p>" + "Tie suljetaan kunnostustöiden vuoksi. " * 8 + "</p>"
    text_body = "Tie suljetaan kunnostustöiden vuoksi. " * 8
    with store.engine.begin() as connection:
        for offset in range(0, count, BATCH):
            notices, tags, translations = [], [], []
            for number in range(offset, min(count, offset + BATCH)):
                notice_id = f"{number:012x}{uuid.uuid4().hex[:20]}"
                region = REGIONS[number % len(REGIONS)]
                moment = start + timedelta(minutes=number)
                notices.append(
                    {
                        "id": notice_id,
                        "source_id": f"source-{number % 40}",
                        "url": f"https://authority.example/{number}",
                        "title": f"Tiedote numero {number}",
                        "summary_html": "<p>Tie suljetaan.</p>",
                        "summary_text": "Tie suljetaan.",
                        "body_html": body,
                        "body_text": text_body,
                        "published_at": moment,
                        "published_precision": "datetime",
                        "published_zone_assumed": False,
                        "published_fallback": False,
                        "first_seen_at": moment,
                        "changed_at": moment,
                        "language": LANGUAGES[region[:2]],
                        "content_hash": "0" * 64,
                        "version": 1,
                        "stage": "ready",
                        "duplicate_group": f"d{number // 2}" if number % 50 < 2 else None,
                    }
                )
                tags.append(
                    {
                        "notice_id": notice_id,
                        "kind": "region",
                        "value": region,
                        "rule": "bench",
                        "detail": "",
                    }
                )
                if number % 3 == 0 and len(region) > 2:
                    tags.append(
                        {
                            "notice_id": notice_id,
                            "kind": "region",
                            "value": region[:2],
                            "rule": "bench",
                            "detail": "",
                        }
                    )
                tags.append(
                    {
                        "notice_id": notice_id,
                        "kind": "topic",
                        "value": TOPICS[number % len(TOPICS)],
                        "rule": "bench",
                        "detail": "",
                    }
                )
                if number % 3 == 0:
                    translations.append(
                        {
                            "notice_id": notice_id,
                            "language": "en",
                            "version": 1,
                            "status": "done",
                            "provider": "bench",
                            "title": f"Notice number {number}",
                            "summary_text": "Road closed.",
                            "summary_html": "<p>Road closed.</p>",
                            "body_text": "Road closed for repairs. " * 8,
                            "body_html": "<p>" + "Road closed for repairs. " * 8 + "</p>",
                            "attempts": 0,
                            "updated_at": moment,
                        }
                    )
            connection.execute(insert(Notice), notices)
            connection.execute(insert(NoticeTag), tags)
            connection.execute(insert(Translation), translations)
    store.dispose()


def child(url: str, output: str) -> None:
    """Write the feeds once and print time and peak memory as JSON."""
    from publishers.feeds import write_feeds

    store = open_store(url)
    settings = Settings(public_base_url="https://noticeboard.example", translation_targets=("en",))
    began = time.perf_counter()
    cpu_began = time.process_time()
    report = write_feeds(store, settings, Path(output))
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu_began
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    summary = {
        "seconds": round(elapsed, 1),
        "cpu_seconds": round(cpu, 1),
        "peak_mib": round(peak_kib / 1024),
    }
    print(json.dumps({**summary, **report.as_dict()}))


def measure(url: str) -> list[dict[str, object]]:
    """Run two child processes writing to the same folder; return their reports."""
    results = []
    with tempfile.TemporaryDirectory() as output:
        for _ in range(2):
            completed = subprocess.run(
                [sys.executable, __file__, "--child", url, output],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=100_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("URL", "OUTPUT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(*arguments.child)
        return

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        fill(url, arguments.notices)
        print("sqlite", json.dumps(measure(url)))

    if arguments.skip_postgres:
        return
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"noticeboard_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'create database "{name}"'))
    try:
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        fill(url, arguments.notices)
        print("postgresql", json.dumps(measure(url)))
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
