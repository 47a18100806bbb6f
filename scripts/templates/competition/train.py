"""Baseline: linear regression by gradient descent, stdlib only.

Replace the model with yours; keep the three habits that make it resumable anywhere:
restore from switchyard_ckpt.latest(), save every SWITCHYARD_CKPT_EVERY_SEC seconds,
and on SIGTERM save and exit 75.
"""
import csv
import json
import os
import signal
import sys
import time

import switchyard_ckpt

EPOCHS = int(os.environ.get("EPOCHS", "40000"))
EVERY = float(os.environ.get("SWITCHYARD_CKPT_EVERY_SEC", "1"))
stop_requested = False


def on_sigterm(_signum, _frame):
    global stop_requested
    stop_requested = True


def load_rows(path):
    with open(path, newline="") as f:
        return [(float(r["x1"]), float(r["x2"]), float(r["y"])) for r in csv.DictReader(f)]


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    rows = load_rows(os.path.join(os.environ["SWITCHYARD_DATA_DIR"], "train.csv"))
    state = {"epoch": 0, "w": [0.0, 0.0], "b": 0.0}
    restored = switchyard_ckpt.load("state.json")
    if restored is not None:
        state = json.loads(restored)
        print(f"resumed from step {state['epoch']}", flush=True)
    metrics = open(os.environ["SWITCHYARD_METRICS"], "a")
    last_save = time.monotonic()
    while state["epoch"] < EPOCHS:
        w, b = state["w"], state["b"]
        gw, gb, loss = [0.0, 0.0], 0.0, 0.0
        for x1, x2, y in rows:
            err = w[0] * x1 + w[1] * x2 + b - y
            loss += err * err
            gw[0] += err * x1
            gw[1] += err * x2
            gb += err
        n = len(rows)
        state["w"] = [w[0] - 0.01 * gw[0] / n, w[1] - 0.01 * gw[1] / n]
        state["b"] = b - 0.01 * gb / n
        state["epoch"] += 1
        if state["epoch"] % 100 == 0:
            metrics.write(json.dumps({"step": state["epoch"], "loss": loss / n}) + "\n")
            metrics.flush()
        if stop_requested or time.monotonic() - last_save >= EVERY:
            switchyard_ckpt.save(state["epoch"], {"state.json": json.dumps(state)})
            last_save = time.monotonic()
            if stop_requested:
                print(f"checkpointed step {state['epoch']} on SIGTERM", flush=True)
                sys.exit(75)
    switchyard_ckpt.save(state["epoch"], {"state.json": json.dumps(state)})
    print(f"done: w={state['w']} b={state['b']:.4f}", flush=True)


if __name__ == "__main__":
    main()
