"""Writes $SWITCHYARD_OUTPUT_DIR/submission.csv (id,species) from the latest checkpoint's weights."""

from __future__ import annotations

import csv
import json
import os
import sys

sys.dont_write_bytecode = True  # importing train.py must not leave __pycache__ in the run folder
import switchyard_ckpt  # noqa: E402
from train import HERE, STATE_FILE, encode, probabilities, read_rows  # noqa: E402


def main() -> int:
    output_dir = os.environ.get("SWITCHYARD_OUTPUT_DIR")
    if not output_dir:
        sys.exit("predict.py: SWITCHYARD_OUTPUT_DIR is not set")
    data_dir = os.environ.get("SWITCHYARD_DATA_DIR") or os.path.join(HERE, "data")
    state = switchyard_ckpt.load(STATE_FILE)
    if state is None:
        sys.exit(f"predict.py: no committed checkpoint in {switchyard_ckpt.ckpt_dir()}; run train.py first")
    model = json.loads(state)["model"]
    classes = model["classes"]

    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "submission.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "species"])
        for row in read_rows(os.path.join(data_dir, "test.csv")):
            p = probabilities(model["weights"], encode(row, model))
            writer.writerow([row["id"], classes[p.index(max(p))]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
