"""k-nearest-neighbour grid search for penguin species, stdlib only, sharded and checkpointed.

The work is a grid of hyper-parameters (k x distance metric x vote weighting), one work unit per
grid point, keyed 0..N-1. A unit scores its configuration by leave-one-out accuracy on the train
rows and predicts the test rows. Shard i of n (SWITCHYARD_SHARD_INDEX / SWITCHYARD_SHARD_COUNT)
does the keys [floor(N*i/n), floor(N*(i+1)/n)) and writes
$SWITCHYARD_OUTPUT_DIR/shard-<i>-of-<n>.jsonl (switchyard-shard/1: header line, then one record
per key, sorted). Every unit is computed from the data alone, so the merged records are the same
bytes whatever the shard count.

Progress is checkpointed through switchyard_ckpt every SWITCHYARD_CKPT_EVERY_SEC seconds
(default 1): a killed shard resumes after its last finished unit. SIGTERM/SIGINT stop after the
current unit, checkpoint, and exit 75.

KNN_UNIT_PAUSE_SEC (default 0) pauses after each unit: a search slow enough to interrupt in a
demo or a test, with the same results.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import sys
import time
from typing import Dict, List, Optional, Tuple

import switchyard_ckpt

KS = [1, 3, 5, 9, 15]
METRICS = ["euclidean", "manhattan", "chebyshev"]
WEIGHTS = ["uniform", "distance"]
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
ISLANDS = ["Biscoe", "Dream", "Torgersen"]
SEXES = ["female", "male"]
STATE_FILE = "state.json"
EX_TEMPFAIL = 75

_stop = False


def _on_stop_signal(signum: int, frame: object) -> None:
    global _stop
    _stop = True


def grid() -> List[Tuple[int, str, str]]:
    """The work units in key order: key = index in this list."""
    return [(k, metric, weights) for metric in METRICS for weights in WEIGHTS for k in KS]


def shard_range(total: int, index: int, count: int) -> Tuple[int, int]:
    return (total * index) // count, (total * (index + 1)) // count


def load(data_dir: str) -> Tuple[List[List[float]], List[str], List[List[float]]]:
    """Train features and labels, test features: z-scored numerics (train statistics) + one-hots."""
    with open(os.path.join(data_dir, "train.csv"), newline="") as f:
        train = list(csv.DictReader(f))
    with open(os.path.join(data_dir, "test.csv"), newline="") as f:
        test = list(csv.DictReader(f))
    stats = []
    for col in NUMERIC:
        values = [float(row[col]) for row in train]
        mean = math.fsum(values) / len(values)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values)) or 1.0
        stats.append((mean, std))

    def features(row: Dict[str, str]) -> List[float]:
        x = [(float(row[col]) - m) / s for col, (m, s) in zip(NUMERIC, stats)]
        x += [1.0 if row["island"] == v else 0.0 for v in ISLANDS]
        x += [1.0 if row["sex"] == v else 0.0 for v in SEXES]
        return x

    return [features(r) for r in train], [r["species"] for r in train], [features(r) for r in test]


def distance(metric: str, a: List[float], b: List[float]) -> float:
    if metric == "euclidean":
        return math.sqrt(sum((x - y) * (x - y) for x, y in zip(a, b)))
    if metric == "manhattan":
        return sum(abs(x - y) for x, y in zip(a, b))
    return max(abs(x - y) for x, y in zip(a, b))


def classify(
    x: List[float], train_x: List[List[float]], train_y: List[str], k: int, metric: str, weights: str, skip: int = -1
) -> str:
    """Majority (or 1/distance-weighted) vote of the k nearest train rows; ties go to the nearest label."""
    dists = sorted((distance(metric, x, t), j) for j, t in enumerate(train_x) if j != skip)
    votes: Dict[str, float] = {}
    order: List[str] = []
    for d, j in dists[:k]:
        label = train_y[j]
        if label not in votes:
            votes[label] = 0.0
            order.append(label)
        votes[label] += 1.0 if weights == "uniform" else 1.0 / (d + 1e-9)
    best = max(votes.values())
    return next(label for label in order if votes[label] == best)


def run_unit(key: int, data) -> str:
    """One work unit: the JSON record line for grid point `key`."""
    train_x, train_y, test_x = data
    k, metric, weights = grid()[key]
    correct = sum(
        classify(x, train_x, train_y, k, metric, weights, skip=i) == train_y[i] for i, x in enumerate(train_x)
    )
    predictions = "".join(classify(x, train_x, train_y, k, metric, weights)[0] for x in test_x)
    record = {
        "key": key,
        "k": k,
        "metric": metric,
        "weights": weights,
        "loo_correct": correct,
        "loo_accuracy": round(correct / len(train_x), 6),
        "test_predictions": predictions,
    }
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def restore(identity: dict) -> Tuple[int, List[str]]:
    """(next key, finished record lines) from the latest checkpoint of this same shard, if any."""
    found = switchyard_ckpt.latest()
    if found is None:
        return identity["lo"], []
    raw = switchyard_ckpt.load(STATE_FILE)
    state = json.loads(raw) if raw else {}
    if state.get("identity") != identity:
        print(f"search: checkpoint {found[0]} is for another shard layout; starting over", file=sys.stderr)
        return identity["lo"], []
    print(f"search: resuming at key {state['next_key']} from checkpoint {found[0]}", file=sys.stderr)
    return state["next_key"], list(state["records"])


def checkpoint(identity: dict, next_key: int, records: List[str]) -> None:
    state = {"identity": identity, "next_key": next_key, "records": records}
    switchyard_ckpt.save(next_key - identity["lo"], {STATE_FILE: json.dumps(state, sort_keys=True)})


def main() -> int:
    signal.signal(signal.SIGTERM, _on_stop_signal)
    signal.signal(signal.SIGINT, _on_stop_signal)
    index = int(os.environ.get("SWITCHYARD_SHARD_INDEX") or 0)
    count = int(os.environ.get("SWITCHYARD_SHARD_COUNT") or 1)
    pins = os.environ.get("SWITCHYARD_PINS_DIGEST") or "unknown"
    out_dir = os.environ.get("SWITCHYARD_OUTPUT_DIR") or "outputs"
    data_dir = os.environ.get("SWITCHYARD_DATA_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    every_sec = float(os.environ.get("SWITCHYARD_CKPT_EVERY_SEC") or 1)
    pause_sec = float(os.environ.get("KNN_UNIT_PAUSE_SEC") or 0)
    if not 0 <= index < count:
        print(f"search: shard index {index} is not in [0, {count})", file=sys.stderr)
        return 2

    # KNN_KEYS: search only the first keys of the grid (a smoke run's short search)
    total = min(len(grid()), int(os.environ.get("KNN_KEYS") or len(grid())))
    lo, hi = shard_range(total, index, count)
    identity = {"shard_index": index, "shard_count": count, "lo": lo, "hi": hi, "total": total, "pins": pins}
    data = load(data_dir)
    key, records = restore(identity)
    last_save = time.monotonic()
    while key < hi:
        if _stop:
            checkpoint(identity, key, records)
            print(f"search: stopped at key {key}, checkpointed", file=sys.stderr)
            return EX_TEMPFAIL
        records.append(run_unit(key, data))
        key += 1
        if pause_sec:
            time.sleep(pause_sec)
        if time.monotonic() - last_save >= every_sec and key < hi:
            checkpoint(identity, key, records)
            last_save = time.monotonic()

    header = {
        "format": "switchyard-shard/1",
        "shard_index": index,
        "shard_count": count,
        "pins_digest": pins,
        "key_range": [lo, hi],
        "records": len(records),
    }
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"shard-{index}-of-{count}.jsonl")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n")
        for line in records:
            f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    best = max((json.loads(r) for r in records), key=lambda r: r["loo_accuracy"], default=None)
    if best is not None:
        print(
            f"search: shard {index} of {count}: keys [{lo}, {hi}), best k={best['k']} {best['metric']} "
            f"{best['weights']} loo_accuracy={best['loo_accuracy']}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
