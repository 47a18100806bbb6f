"""Softmax regression for penguin species, stdlib only, checkpointed through switchyard_ckpt.

Reads EPOCHS and the SWITCHYARD_* variables of docs/experiment-contract.md. Resuming from
any checkpoint gives byte-identical results: the checkpoint holds the epoch counter and the
weights (JSON floats round-trip exactly), and each epoch's shuffle is seeded from seed+epoch.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import signal
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import switchyard_ckpt

HERE = os.path.dirname(os.path.abspath(__file__))
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = {"island": ["Biscoe", "Dream", "Torgersen"], "sex": ["female", "male"]}
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
DEFAULT_EPOCHS = 8000
BATCH_SIZE = 32
LEARNING_RATE = 0.1
L2 = 1e-4
METRICS_EVERY = 50
STATE_FILE = "state.json"

Model = Dict[str, Any]
Matrix = List[List[float]]

_stop_requested = False


def _on_stop_signal(signum: int, frame: object) -> None:
    global _stop_requested
    _stop_requested = True


def read_rows(path: str) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def new_model(rows: List[Dict[str, str]], seed: int) -> Model:
    """Standardization from the training rows and small random weights from the seed."""
    mean: List[float] = []
    std: List[float] = []
    for name in NUMERIC:
        values = [float(r[name]) for r in rows]
        m = sum(values) / len(values)
        mean.append(m)
        std.append(math.sqrt(sum((v - m) ** 2 for v in values) / len(values)) or 1.0)
    model: Model = {
        "numeric": NUMERIC, "mean": mean, "std": std, "categorical": CATEGORICAL, "classes": CLASSES
    }
    rng = random.Random(seed)
    width = len(encode(rows[0], model))
    model["weights"] = [[rng.uniform(-0.01, 0.01) for _ in range(width)] for _ in CLASSES]
    return model


def encode(row: Dict[str, str], model: Model) -> List[float]:
    """Standardized numerics, one-hot categoricals (unknown level: all zero), then a bias of 1."""
    x = [(float(row[n]) - m) / s for n, m, s in zip(model["numeric"], model["mean"], model["std"])]
    for name, levels in model["categorical"].items():
        x += [1.0 if row[name] == level else 0.0 for level in levels]
    return x + [1.0]


def probabilities(weights: Matrix, x: List[float]) -> List[float]:
    logits = [sum(w * v for w, v in zip(row, x)) for row in weights]
    top = max(logits)
    exps = [math.exp(z - top) for z in logits]
    total = sum(exps)
    return [e / total for e in exps]


def train_epoch(weights: Matrix, xs: List[List[float]], ys: List[int], seed: int, epoch: int) -> float:
    """One pass of mini-batch gradient descent, in place; returns the mean loss seen."""
    order = list(range(len(xs)))
    random.Random(f"{seed}/{epoch}").shuffle(order)
    total_loss = 0.0
    for start in range(0, len(order), BATCH_SIZE):
        batch = order[start : start + BATCH_SIZE]
        grad = [[0.0] * len(row) for row in weights]
        for i in batch:
            x, p = xs[i], probabilities(weights, xs[i])
            total_loss -= math.log(max(p[ys[i]], 1e-300))
            for k, g_row in enumerate(grad):
                err = p[k] - (1.0 if k == ys[i] else 0.0)
                for j, v in enumerate(x):
                    g_row[j] += err * v
        for w_row, g_row in zip(weights, grad):
            for j, g in enumerate(g_row):
                w_row[j] -= LEARNING_RATE * (g / len(batch) + L2 * w_row[j])
    return total_loss / len(xs)


def evaluate(weights: Matrix, xs: List[List[float]], ys: List[int]) -> Tuple[float, float]:
    """(mean cross-entropy, accuracy) on the given rows."""
    loss, correct = 0.0, 0
    for x, y in zip(xs, ys):
        p = probabilities(weights, x)
        loss -= math.log(max(p[y], 1e-300))
        correct += p.index(max(p)) == y
    return loss / len(xs), correct / len(xs)


def resume(seed: int) -> Optional[Tuple[int, Model]]:
    found = switchyard_ckpt.latest()
    if found is None:
        return None
    step, path = found
    with open(os.path.join(path, STATE_FILE), encoding="utf-8") as f:
        state = json.load(f)
    if state["seed"] != seed:
        sys.exit(f"train.py: checkpoint {path} was made with seed {state['seed']}, not {seed}")
    print(f"resumed from step {step}", flush=True)
    return step, state["model"]


def checkpoint(epoch: int, seed: int, model: Model) -> None:
    state = {"epoch": epoch, "seed": seed, "model": model}
    switchyard_ckpt.save(epoch, {STATE_FILE: json.dumps(state, sort_keys=True)})


def log_metrics(epoch: int, weights: Matrix, xs: List[List[float]], ys: List[int]) -> None:
    path = os.environ.get("SWITCHYARD_METRICS")
    if not path:
        return
    loss, accuracy = evaluate(weights, xs, ys)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"step": epoch, "loss": loss, "train_accuracy": accuracy}) + "\n")


def main() -> int:
    # SIGTERM comes from Switchyard; SIGINT is Ctrl-C when run by hand. Both stop after the epoch.
    signal.signal(signal.SIGTERM, _on_stop_signal)
    signal.signal(signal.SIGINT, _on_stop_signal)
    epochs = int(os.environ.get("EPOCHS") or DEFAULT_EPOCHS)
    seed = int(os.environ.get("SWITCHYARD_SEED") or 0)
    every_sec = float(os.environ.get("SWITCHYARD_CKPT_EVERY_SEC") or 2)
    data_dir = os.environ.get("SWITCHYARD_DATA_DIR") or os.path.join(HERE, "data")
    output_dir = os.environ.get("SWITCHYARD_OUTPUT_DIR")
    if not output_dir:
        sys.exit("train.py: SWITCHYARD_OUTPUT_DIR is not set")

    rows = read_rows(os.path.join(data_dir, "train.csv"))
    resumed = resume(seed)
    epoch, model = resumed if resumed else (0, new_model(rows, seed))
    weights: Matrix = model["weights"]
    xs = [encode(r, model) for r in rows]
    ys = [CLASSES.index(r["species"]) for r in rows]

    saved_epoch = epoch if resumed else -1
    last_save = last_print = time.monotonic()
    while epoch < epochs:
        loss = train_epoch(weights, xs, ys, seed, epoch)
        epoch += 1
        # Metrics go before the same step's checkpoint: a crash in between repeats a line, never loses one.
        if epoch % METRICS_EVERY == 0 or epoch == epochs:
            log_metrics(epoch, weights, xs, ys)
        now = time.monotonic()
        if now - last_print >= 1.0:
            print(f"epoch {epoch}/{epochs} loss {loss:.6f}", flush=True)
            last_print = now
        if epoch == epochs:
            break
        if _stop_requested:
            checkpoint(epoch, seed, model)
            print(f"stop requested: checkpointed step {epoch}, exiting 75", flush=True)
            return 75
        if now - last_save >= every_sec:
            checkpoint(epoch, seed, model)
            saved_epoch, last_save = epoch, now

    if saved_epoch != epoch:
        checkpoint(epoch, seed, model)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "model.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(model, indent=1, sort_keys=True) + "\n")
    loss, accuracy = evaluate(weights, xs, ys)
    print(f"done: {epoch} epochs, train loss {loss:.6f}, train accuracy {accuracy:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
