"""Time `transforms.tagging.tag_notice` per notice on generated notices of a fixed length.

    .venv/bin/python benchmarks/tagging_speed.py [--notices N] [--length CHARS] [--repeat N]
        [--cold]

The notices are word salad in six languages from benchmarks/generate_replay.py (title plus body
as plain text, the body repeated or cut so that each notice has `--length` characters). Each
source declares its language and one topic hint. Time is CPU time of this process
(`time.process_time`), median over `--repeat` passes, divided by the number of notices; wall
time is printed too. The tagger remembers the folded forms and keyword matches of words it has
seen, and `--cold` empties those caches before every notice, so only repeats within a notice
are served from them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

import generate_replay  # noqa: E402

from noticeboard.catalog import Source  # noqa: E402
from transforms import _text, _topics  # noqa: E402
from transforms._markup import html_to_text  # noqa: E402
from transforms.tagging import tag_notice  # noqa: E402

Notice = tuple[str, str, str, Source]
ANCHOR = datetime(2026, 12, 4, 12, tzinfo=UTC)


def make_notices(count: int, length: int, seed: int = 1) -> list[Notice]:
    """Generate `count` notices of `length` characters over 12 sources in six languages."""
    rng = random.Random(seed)
    notices = []

    for planned in generate_replay.plan_sources(12, count):
        country = generate_replay.LANGUAGE_HOME[planned.language][2]
        source = Source(
            id=planned.id,
            authority="Benchmark authority",
            country=country,
            regions=(country,),
            languages=(planned.language,),
            timezone="UTC",
            kind="rss",
            urls=(f"https://bench.example.org/{planned.path}",),
            topic_hints=("housing",),
        )
        for item in generate_replay.generate_items(
            rng, planned, "https://bench.example.org", ANCHOR
        ):
            body = html_to_text(item["body"])
            while len(item["title"]) + 1 + len(body) < length:
                body = f"{body} {body}"
            body = body[: max(0, length - len(item["title"]) - 1)]
            notices.append((item["title"], body, planned.language, source))

    return notices


def clear_word_caches() -> None:
    """Empty the tagger's per-word caches (absent in versions without them)."""
    for cached in (
        getattr(_text, "_token", None),
        getattr(_topics, "_word_pattern_ids", None),
    ):
        if cached is not None:
            cached.cache_clear()


def time_passes(notices: list[Notice], repeat: int, cold: bool) -> tuple[list[float], list[float]]:
    """Return CPU and wall milliseconds per notice of each pass."""
    tag_notice(*notices[0])
    cpu, wall = [], []

    for _ in range(repeat):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        for notice in notices:
            if cold:
                clear_word_caches()
            tag_notice(*notice)
        cpu.append((time.process_time() - cpu_start) * 1000 / len(notices))
        wall.append((time.perf_counter() - wall_start) * 1000 / len(notices))

    return cpu, wall


def main() -> None:
    """Parse the command line, time the passes and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notices", type=int, default=300, help="number of notices per pass")
    parser.add_argument("--length", type=int, default=600, help="characters per notice")
    parser.add_argument("--repeat", type=int, default=7, help="number of timed passes")
    parser.add_argument(
        "--cold", action="store_true", help="empty the word caches before each notice"
    )
    arguments = parser.parse_args()

    notices = make_notices(arguments.notices, arguments.length)
    cpu, wall = time_passes(notices, arguments.repeat, arguments.cold)
    print(
        f"notices={len(notices)} length={arguments.length} cold={arguments.cold} "
        f"cpu_ms_per_notice={statistics.median(cpu):.3f} "
        f"wall_ms_per_notice={statistics.median(wall):.3f} "
        f"cpu_ms_passes={' '.join(f'{value:.3f}' for value in cpu)}"
    )


if __name__ == "__main__":
    main()
