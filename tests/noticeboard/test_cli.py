"""The CLI end to end: offline runs over replays, exports, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPLAY_CATALOG = ROOT / "examples" / "replay-catalog.yaml"
REPLAY_MANIFEST = ROOT / "examples" / "replay" / "manifest.json"


def noticeboard(args: list[str], workdir: Path, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess, in `workdir`, against `database_url` (default: SQLite there)."""
    environment = dict(os.environ)
    environment.pop("NOTICEBOARD_DATABASE_URL", None)
    if database_url:
        environment["NOTICEBOARD_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "noticeboard.cli", *args],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def export(workdir: Path, database_url: str | None = None, catalog: Path = REPLAY_CATALOG) -> list[dict[str, object]]:
    """Return the `notices --format jsonl` records, with times in the zones of `catalog`."""
    result = noticeboard(["--catalog", str(catalog), "notices", "--format", "jsonl"], workdir, database_url)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def run_demo(workdir: Path) -> subprocess.CompletedProcess[str]:
    return noticeboard(["--catalog", str(REPLAY_CATALOG), "run", "--replay", str(REPLAY_MANIFEST)], workdir)


def test_demo_replay_stores_every_source(tmp_path: Path) -> None:
    result = run_demo(tmp_path)

    assert result.returncode == 0, result.stderr
    per_source = Counter(record["source"] for record in export(tmp_path))
    assert per_source == {
        "example-fi-tax": 2,
        "example-se-migration": 2,
        "example-ee-city": 2,
        "example-lv-social": 1,
        "example-ee-police-ru": 1,
    }
    assert (tmp_path / "public" / "feed.json").is_file()


def test_demo_values_exact(tmp_path: Path) -> None:
    run_demo(tmp_path)
    by_title = {record["title"]: record for record in export(tmp_path)}

    deadline = by_title["Veroilmoituksen palautuksen määräaika lähestyy"]
    closure = by_title["Verotoimiston asiakaspalvelu suljettu Helsingissä 1.5."]
    pension = by_title["Pensiju indeksācija šogad notiks 1. oktobrī"]
    daycare = by_title["Lasteaiakohtade taotlemine algab 2. mail"]

    assert deadline["published"] == "2026-04-15T09:00:00+03:00"
    assert deadline["language"] == "fi"
    assert deadline["url"] == "https://vero.example.fi/tiedotteet/2026/veroilmoitus-maaraaika"
    assert closure["published"] == "2026-04-22T14:30:00+03:00"
    assert pension["published"] == "2026-04-08T10:00:00+03:00"
    assert pension["language"] == "lv"
    assert daycare["published"] == "2026-04-09T00:00:00+03:00"
    assert daycare["published_precision"] == "date"
    assert daycare["language"] == "et"


def test_catalog_option_after_command(tmp_path: Path) -> None:
    result = noticeboard(
        ["run", "--catalog", str(REPLAY_CATALOG), "--replay", str(REPLAY_MANIFEST), "--source", "example-lv-social"],
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert [record["source"] for record in export(tmp_path)] == ["example-lv-social"]


def test_rerun_changes_nothing(tmp_path: Path) -> None:
    run_demo(tmp_path)
    first = export(tmp_path)

    second_run = run_demo(tmp_path)

    assert second_run.returncode == 0, second_run.stderr
    assert export(tmp_path) == first


def test_jsonl_has_contract_fields(tmp_path: Path) -> None:
    run_demo(tmp_path)

    for record in export(tmp_path):
        for name in ("id", "source", "url", "title", "published", "language", "regions", "topics", "translations"):
            assert name in record
        assert isinstance(record["translations"], dict)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["run", "--source", "no-such-source"], "unknown source id no-such-source"),
        (["notices", "--source", "no-such-source"], "unknown source id no-such-source"),
        (["--catalog", "missing.yaml", "run"], "cannot read catalog missing.yaml"),
        (["run", "--replay", "missing-manifest.json"], "cannot read replay manifest"),
    ],
)
def test_bad_input_exits_2(tmp_path: Path, arguments: list[str], message: str) -> None:
    result = noticeboard(arguments, tmp_path)

    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_notices_of_source_left_catalog(tmp_path: Path) -> None:
    run_demo(tmp_path)
    other_catalog = ROOT / "examples" / "corpus-catalog.yaml"

    result = noticeboard(["--catalog", str(other_catalog), "notices", "--source", "example-lv-social"], tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() != ""


def test_invalid_catalog_exits_2(tmp_path: Path) -> None:
    catalog = tmp_path / "bad.yaml"
    catalog.write_text("sources:\n  - id: x1\n    country: FI\n", encoding="utf-8")

    result = noticeboard(["--catalog", str(catalog), "run"], tmp_path)

    assert result.returncode == 2
    assert "source 'x1': field `authority` is missing" in result.stderr


def test_unreachable_database_exits_2(tmp_path: Path) -> None:
    result = noticeboard(["notices"], tmp_path, "postgresql+psycopg://nobody@127.0.0.1:9/none")

    assert result.returncode == 2
    assert "cannot connect to the database postgresql+psycopg://nobody@127.0.0.1:9/none" in result.stderr


def test_bad_input_keeps_stored_notices(tmp_path: Path) -> None:
    run_demo(tmp_path)
    before = export(tmp_path)
    manifest = tmp_path / "broken.json"
    manifest.write_text(json.dumps({"captures": [{"url": "https://x.example/", "file": "gone.xml"}]}), encoding="utf-8")

    for arguments in (["run", "--source", "nope"], ["run", "--replay", str(manifest)]):
        assert noticeboard(["--catalog", str(REPLAY_CATALOG), *arguments], tmp_path).returncode == 2

    assert export(tmp_path) == before


def test_offline_run_fails_sources_and_writes_feeds(tmp_path: Path) -> None:
    manifest = tmp_path / "empty.json"
    manifest.write_text(json.dumps({"captures": []}), encoding="utf-8")

    result = noticeboard(["--catalog", str(REPLAY_CATALOG), "run", "--replay", str(manifest)], tmp_path)

    assert result.returncode == 1
    assert "no recorded response" in result.stdout
    assert (tmp_path / "public" / "feed.json").is_file()


def test_config_masks_url_secrets(tmp_path: Path) -> None:
    environment_url = "postgresql+psycopg://reader:s3cretpw@127.0.0.1:9/x"
    result = subprocess.run(
        [sys.executable, "-m", "noticeboard.cli", "config"],
        cwd=tmp_path,
        env={**os.environ, "NOTICEBOARD_DATABASE_URL": environment_url, "NOTICEBOARD_WEBHOOK_URL": "https://u:pw@hooks.example/x?token=abc"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "s3cretpw" not in result.stdout
    assert "token=abc" not in result.stdout
    assert ":pw@" not in result.stdout
    assert "database_url = postgresql+psycopg://reader:***@127.0.0.1:9/x" in result.stdout


def test_unwritable_output_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x", encoding="utf-8")

    result = noticeboard(
        ["--catalog", str(REPLAY_CATALOG), "run", "--replay", str(REPLAY_MANIFEST), "--output", str(blocker / "public")],
        tmp_path,
    )

    assert result.returncode == 2
    assert "cannot write the feeds to" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://user@127.0.0.1/x", "names mysql, which Noticeboard does not support"),
        ("postgresql+psycopg2://user@127.0.0.1/x", "database driver postgresql+psycopg2 is not installed"),
    ],
)
def test_unsupported_database_exits_2(tmp_path: Path, url: str, message: str) -> None:
    result = noticeboard(["notices"], tmp_path, url)

    assert result.returncode == 2
    assert message in result.stderr


def test_foreign_database_not_migrated(tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "other.db"
    with sqlite3.connect(database) as connection:
        connection.execute("create table invoices (id integer primary key)")

    result = noticeboard(["notices"], tmp_path, f"sqlite:///{database}")

    assert result.returncode == 2
    assert "tables that are not Noticeboard's" in result.stderr
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master where type='table'")}
    assert tables == {"invoices"}


def test_check_all_failed_exits_1(tmp_path: Path) -> None:
    manifest = tmp_path / "empty.json"
    manifest.write_text(json.dumps({"captures": []}), encoding="utf-8")

    result = noticeboard(["--catalog", str(REPLAY_CATALOG), "sources", "check", "--replay", str(manifest)], tmp_path)

    assert result.returncode == 1
    assert "every checked source failed" in result.stderr
