"""Settings from the environment: conversion, validation and masking of secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from noticeboard.errors import ConfigError
from noticeboard.settings import Settings


def test_values_converted() -> None:
    settings = Settings.from_env(
        {
            "NOTICEBOARD_TRANSLATION_TARGETS": "en, ru,uk",
            "NOTICEBOARD_MAX_RETRIES": "5",
            "NOTICEBOARD_RESPECT_ROBOTS": "false",
            "NOTICEBOARD_OUTPUT_DIR": "/srv/feeds",
            "NOTICEBOARD_READ_TIMEOUT": "2.5",
        }
    )

    assert settings.translation_targets == ("en", "ru", "uk")
    assert settings.max_retries == 5
    assert settings.respect_robots is False
    assert settings.output_dir == Path("/srv/feeds")
    assert settings.read_timeout == 2.5


def test_secret_masked() -> None:
    settings = Settings.from_env({"NOTICEBOARD_SMTP_PASSWORD": "hunter2", "NOTICEBOARD_SMTP_HOST": "mail"})

    shown = settings.redacted()

    assert shown["smtp_password"] == "***"
    assert shown["smtp_host"] == "mail"


def test_bad_number_names_variable() -> None:
    with pytest.raises(ConfigError, match="NOTICEBOARD_MAX_RETRIES='many' is invalid; set it to a whole number"):
        Settings.from_env({"NOTICEBOARD_MAX_RETRIES": "many"})


def test_bad_decimal_names_expected_form() -> None:
    with pytest.raises(ConfigError, match="NOTICEBOARD_READ_TIMEOUT='slow' is invalid; set it to a number"):
        Settings.from_env({"NOTICEBOARD_READ_TIMEOUT": "slow"})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("NOTICEBOARD_TRANSLATION_RATE_PER_SECOND", "0", "is too small"),
        ("NOTICEBOARD_TRANSLATION_CHUNK_CHARS", "1", "is too small"),
        ("NOTICEBOARD_FEED_PAGE_SIZE", "0", "is too small"),
        ("NOTICEBOARD_LANGUAGE_DETECTOR", "cld3", "use one of lingua, langdetect"),
        ("NOTICEBOARD_SMTP_SECURITY", "ssl", "use one of none, starttls, tls"),
        ("NOTICEBOARD_SMTP_PORT", "70000", "is not a TCP port"),
    ],
)
def test_out_of_range_rejected(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({variable: value})
