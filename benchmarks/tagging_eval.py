"""Print the tagger's scores on the labelled evaluation set as a Markdown section.

Usage: .venv/bin/python benchmarks/tagging_eval.py [PATH.jsonl]

The default set is tests/transforms/data/tagging_eval.jsonl. The output is the body of the
"Tagging accuracy" section of docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from transforms._evaluation import Evaluation, Score, evaluate, load_cases

DEFAULT_CASES = (
    Path(__file__).resolve().parents[1] / "tests" / "transforms" / "data" / "tagging_eval.jsonl"
)


def format_row(label: str, score: Score) -> str:
    return (
        f"| {label} | {score.precision:.3f} | {score.recall:.3f} | {score.f1:.3f} | "
        f"{score.support} |"
    )


def format_report(evaluation: Evaluation, path: Path) -> str:
    languages = ", ".join(f"{code} {count}" for code, count in sorted(evaluation.languages.items()))
    lines = [
        f"Set: `{path.name}`, {evaluation.notices} notices ({languages}).",
        "",
        "| topic | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    lines += [format_row(slug, score) for slug, score in evaluation.topics.items()]
    lines += [
        format_row("**micro average**", evaluation.topics_micro),
        "",
        "| regions | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
        format_row("countries", evaluation.countries),
        format_row("all region codes, parents included", evaluation.regions),
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_CASES
    evaluation = evaluate(load_cases(path))
    print(format_report(evaluation, path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
