"""Predictions from the latest committed checkpoint."""
import csv
import json
import os

import switchyard_ckpt

state = json.loads(switchyard_ckpt.load("state.json"))
w, b = state["w"], state["b"]
with open(os.path.join(os.environ["SWITCHYARD_DATA_DIR"], "test.csv"), newline="") as f:
    rows = list(csv.DictReader(f))
with open(os.path.join(os.environ["SWITCHYARD_OUTPUT_DIR"], "submission.csv"), "w", newline="") as out:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "y"])
    for r in rows:
        writer.writerow([r["id"], repr(w[0] * float(r["x1"]) + w[1] * float(r["x2"]) + b)])
