"""Scores a submission: python3 score.py submission.csv -> one JSON line with the accuracy.

Exits 2 with a one-line message for a malformed or incomplete submission.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from typing import Dict, List, Optional, Set

HERE = os.path.dirname(os.path.abspath(__file__))
ANSWERS = os.path.join(HERE, "answers", "test_labels.csv")
HEADER = ["id", "species"]


class SubmissionError(Exception):
    pass


def read_labels(
    path: str, known_ids: Optional[Set[str]] = None, species: Optional[Set[str]] = None
) -> Dict[str, str]:
    """id -> species from an id,species CSV, checked against the answer key when one is given."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as err:
        raise SubmissionError(f"cannot read it ({err})") from None
    if not rows or [c.strip() for c in rows[0]] != HEADER:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise SubmissionError(f"header must be {','.join(HEADER)}, got {got}")
    labels: Dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2:
            raise SubmissionError(f"line {line}: expected 2 fields, got {len(row)}")
        row_id, label = row[0].strip(), row[1].strip()
        if row_id in labels:
            raise SubmissionError(f"line {line}: duplicate id {row_id}")
        if known_ids is not None and row_id not in known_ids:
            raise SubmissionError(f"line {line}: unknown id {row_id}")
        if species is not None and label not in species:
            expected = ", ".join(sorted(species))
            raise SubmissionError(f"line {line}: unknown species {label!r} (expected one of {expected})")
        labels[row_id] = label
    return labels


def score(submission: str) -> Dict[str, object]:
    answers = read_labels(ANSWERS)
    predicted = read_labels(submission, set(answers), set(answers.values()))
    missing = [i for i in answers if i not in predicted]
    if missing:
        raise SubmissionError(f"{len(missing)} of {len(answers)} ids missing (first: {missing[0]})")
    correct = sum(predicted[i] == answers[i] for i in answers)
    return {"metric": "accuracy", "score": round(correct / len(answers), 6), "rows": len(answers)}


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print("usage: python3 score.py submission.csv", file=sys.stderr)
        return 2
    try:
        result = score(argv[1])
    except SubmissionError as err:
        print(f"score.py: {argv[1]}: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
