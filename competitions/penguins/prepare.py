"""One-off: builds data/train.csv, data/test.csv and answers/test_labels.csv from penguins.json.

Usage: python3 prepare.py node_modules/vega-datasets/data/penguins.json
Drops rows with a missing value, then splits each species 80/20 with a fixed seed.
"""

from __future__ import annotations

import csv
import json
import os
import random
import sys
from typing import Dict, List, Tuple

SEED = 20140305
TEST_FRACTION = 0.2
HERE = os.path.dirname(os.path.abspath(__file__))

# output column -> key in vega-datasets' penguins.json
COLUMNS = {
    "island": "Island",
    "bill_length_mm": "Beak Length (mm)",
    "bill_depth_mm": "Beak Depth (mm)",
    "flipper_length_mm": "Flipper Length (mm)",
    "body_mass_g": "Body Mass (g)",
    "sex": "Sex",
}
FEATURES = list(COLUMNS)

Row = Dict[str, object]


def clean(raw: List[dict]) -> List[Row]:
    """Rows with every value present; sex "." counts as missing."""
    rows = []
    for item in raw:
        row: Row = {col: item.get(key) for col, key in COLUMNS.items()}
        row["species"] = item.get("Species")
        if any(v is None or v == "" or v == "." for v in row.values()):
            continue
        row["sex"] = str(row["sex"]).lower()
        rows.append(row)
    return rows


def split(rows: List[Row], rng: random.Random) -> Tuple[List[Row], List[Row]]:
    """Stratified by species: round(20%) of each species goes to the test set."""
    train: List[Row] = []
    test: List[Row] = []
    for species in sorted({str(r["species"]) for r in rows}):
        group = [r for r in rows if r["species"] == species]
        rng.shuffle(group)
        n_test = round(len(group) * TEST_FRACTION)
        test += group[:n_test]
        train += group[n_test:]
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def write_csv(path: str, header: List[str], rows: List[List[object]]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main(source: str) -> None:
    with open(source, encoding="utf-8") as f:
        rows = clean(json.load(f))
    train, test = split(rows, random.Random(SEED))
    write_csv(
        os.path.join(HERE, "data", "train.csv"),
        FEATURES + ["species"],
        [[r[c] for c in FEATURES + ["species"]] for r in train],
    )
    ids = range(1, len(test) + 1)
    write_csv(
        os.path.join(HERE, "data", "test.csv"),
        ["id"] + FEATURES,
        [[i] + [r[c] for c in FEATURES] for i, r in zip(ids, test)],
    )
    write_csv(
        os.path.join(HERE, "answers", "test_labels.csv"),
        ["id", "species"],
        [[i, r["species"]] for i, r in zip(ids, test)],
    )
    print(f"{len(rows)} complete rows: {len(train)} train, {len(test)} test")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 prepare.py path/to/penguins.json")
    main(sys.argv[1])
