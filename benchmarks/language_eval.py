"""Compare lingua and langdetect on the labelled set: accuracy per language and kind, and time.

    .venv/bin/python benchmarks/language_eval.py [--data PATH] [--repeat N]

Each detector runs through `transforms.language.detect_language` with no declared language, so
the numbers measure the detector alone. Detectors are built and warmed up before timing. Time is
CPU time of this process (`time.process_time`), so other load on the machine disturbs it less than
wall-clock time. The figure per text is the median over `--repeat` passes divided by the set size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from transforms.language import DETECTORS, detect_language  # noqa: E402

DEFAULT_DATA = PROJECT_DIR / "tests" / "transforms" / "data" / "language_eval.jsonl"


def load(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def evaluate(samples: list[dict[str, str]], detector: str, repeat: int) -> dict[str, object]:
    for sample in samples[:10]:
        detect_language(sample["text"], detector=detector)

    correct: Counter[str] = Counter()
    total: Counter[str] = Counter()
    mistakes: dict[str, Counter[str]] = defaultdict(Counter)
    for sample in samples:
        found = detect_language(sample["text"], detector=detector).code
        for group in (sample["language"], sample["kind"], "all"):
            total[group] += 1
            correct[group] += found == sample["language"]
        if found != sample["language"]:
            mistakes[sample["language"]][str(found)] += 1

    milliseconds = {"all": _median_ms(samples, detector, repeat)}
    for kind in sorted({sample["kind"] for sample in samples}):
        milliseconds[kind] = _median_ms(
            [sample for sample in samples if sample["kind"] == kind], detector, repeat
        )

    return {
        "accuracy": {group: correct[group] / total[group] for group in total},
        "mistakes": {language: dict(counts) for language, counts in mistakes.items()},
        "ms_per_text": milliseconds,
    }


def _median_ms(samples: list[dict[str, str]], detector: str, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.process_time()
        for sample in samples:
            detect_language(sample["text"], detector=detector)
        timings.append((time.process_time() - started) / len(samples))
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled JSON Lines file")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the set")
    arguments = parser.parse_args()

    samples = load(arguments.data)
    kinds = Counter(sample["kind"] for sample in samples)
    print(
        f"{len(samples)} texts: "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    )

    results = {detector: evaluate(samples, detector, arguments.repeat) for detector in DETECTORS}
    groups = sorted({group for result in results.values() for group in result["accuracy"]})  # type: ignore[attr-defined]

    print("| group | " + " | ".join(DETECTORS) + " |")
    print("|---|" + "---|" * len(DETECTORS))
    for group in groups:
        cells = [f"{results[detector]['accuracy'][group]:.1%}" for detector in DETECTORS]  # type: ignore[index]
        print(f"| {group} | " + " | ".join(cells) + " |")
    for kind in results[DETECTORS[0]]["ms_per_text"]:  # type: ignore[attr-defined]
        cells = [f"{results[detector]['ms_per_text'][kind]:.3f}" for detector in DETECTORS]  # type: ignore[index]
        print(f"| ms per text ({kind}) | " + " | ".join(cells) + " |")
    for detector in DETECTORS:
        print(f"{detector} mistakes (expected: found count): {results[detector]['mistakes']}")


if __name__ == "__main__":
    main()
