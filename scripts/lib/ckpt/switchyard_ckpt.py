"""Switchyard checkpoints for Python experiments (stdlib only, Python 3.9+).

Implements the format of docs/experiment-contract.md: a checkpoint is
``$SWITCHYARD_CKPT_DIR/<step>/`` holding blob files and a ``manifest.json`` written last.
Writing the manifest (tmp file, fsync, rename, fsync dir) is the commit.

    import switchyard_ckpt
    found = switchyard_ckpt.latest()          # (step, path) or None
    switchyard_ckpt.save(step, {"state.json": text})
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from datetime import datetime, timezone
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

FORMAT = "switchyard-ckpt/1"
MANIFEST = "manifest.json"
_STEP_RE = re.compile(r"^(0|[1-9][0-9]*)$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

Contents = Union[bytes, str]


class CheckpointError(Exception):
    """A step directory that does not hold a valid committed checkpoint."""


def ckpt_dir() -> str:
    """The checkpoint root, from SWITCHYARD_CKPT_DIR."""
    value = os.environ.get("SWITCHYARD_CKPT_DIR", "")
    if not value:
        raise RuntimeError("switchyard_ckpt: SWITCHYARD_CKPT_DIR is not set")
    return value


def _attempt() -> int:
    """$SWITCHYARD_ATTEMPT as a number; 0 where it is none (unset, or "predict" in a predict run)."""
    value = os.environ.get("SWITCHYARD_ATTEMPT", "")
    return int(value) if value.isdigit() else 0


def save(step: int, files: Mapping[str, Contents]) -> str:
    """Commits `files` as checkpoint `step`, prunes old steps and returns the step directory."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"switchyard_ckpt: step must be a non-negative int, got {step!r}")
    blobs = {_check_path(path): _as_bytes(path, data) for path, data in files.items()}
    root = ckpt_dir()
    os.makedirs(root, exist_ok=True)
    step_dir = os.path.join(root, str(step))
    if os.path.lexists(step_dir):
        _remove_step(step_dir)
    os.mkdir(step_dir)
    _fsync_dir(root)

    entries = [_write_blob(step_dir, path, blobs[path]) for path in sorted(blobs)]
    for directory in _blob_dirs(step_dir, blobs):  # blobs' directory entries are durable before the commit
        _fsync_dir(directory)
    manifest = {
        "format": FORMAT,
        "step": step,
        "run_id": os.environ.get("SWITCHYARD_RUN_ID", ""),
        "attempt": _attempt(),
        "created_at": _utc_now(),
        "files": entries,
    }
    tmp = os.path.join(step_dir, MANIFEST + ".tmp")
    _write_synced(tmp, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    os.replace(tmp, os.path.join(step_dir, MANIFEST))
    _fsync_dir(step_dir)  # the rename is the commit

    _prune(root, int(os.environ.get("SWITCHYARD_CKPT_KEEP") or 3))
    return step_dir


def latest() -> Optional[Tuple[int, str]]:
    """(step, path) of the newest step whose manifest verifies, or None; reports skipped steps."""
    root = ckpt_dir()
    for step in sorted(_step_dirs(root), reverse=True):
        path = os.path.join(root, str(step))
        try:
            verify(path, step)
        except CheckpointError as err:
            print(f"switchyard_ckpt: skipping step {step}: {err}", file=sys.stderr, flush=True)
            continue
        return step, path
    return None


def load(name: str) -> Optional[bytes]:
    """Contents of file `name` of the latest step, or None when there is no such file or step."""
    found = latest()
    if found is None:
        return None
    listed = {entry["path"] for entry in _read_manifest(found[1])["files"]}
    if _check_path(name) not in listed:
        return None
    with open(os.path.join(found[1], name), "rb") as f:
        return f.read()


def verify(step_dir: str, step: int) -> dict:
    """Returns the manifest of `step_dir` or raises CheckpointError saying what is wrong."""
    manifest = _read_manifest(step_dir)
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"manifest format is {manifest.get('format')!r}, not {FORMAT!r}")
    if isinstance(manifest.get("step"), bool) or manifest.get("step") != step:
        raise CheckpointError(f"manifest step {manifest.get('step')!r} does not match the directory name")
    for key, kind in (("run_id", str), ("attempt", int), ("created_at", str), ("files", list)):
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise CheckpointError(f"manifest {key} is not a {kind.__name__}")
    seen = set()
    for entry in manifest["files"]:
        path = _verify_entry(step_dir, entry)
        if path in seen:
            raise CheckpointError(f"manifest lists {path} twice")
        seen.add(path)
    return manifest


def _verify_entry(step_dir: str, entry: object) -> str:
    if not isinstance(entry, dict):
        raise CheckpointError("manifest files entry is not an object")
    path, size, digest = entry.get("path"), entry.get("size"), entry.get("sha256")
    typed = isinstance(path, str) and isinstance(size, int) and isinstance(digest, str)
    if not typed or not _SHA256_RE.match(digest):
        raise CheckpointError(f"manifest entry {entry!r} lacks a valid path, size or sha256")
    try:
        _check_path(path)
        actual_size, actual_digest = _hash_file(os.path.join(step_dir, path))
    except ValueError as err:
        raise CheckpointError(str(err)) from None
    except OSError as err:
        raise CheckpointError(f"{path}: {err.strerror or err}") from None
    if actual_size != size:
        raise CheckpointError(f"{path}: size {actual_size} != manifest size {size}")
    if actual_digest != digest:
        raise CheckpointError(f"{path}: sha256 does not match the manifest")
    return path


def _hash_file(path: str) -> Tuple[int, str]:
    """Size and SHA-256 of a file, read in chunks so large blobs need little memory."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _read_manifest(step_dir: str) -> dict:
    try:
        with open(os.path.join(step_dir, MANIFEST), "rb") as f:
            manifest = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise CheckpointError("no manifest.json (not committed)") from None
    except (OSError, ValueError) as err:
        raise CheckpointError(f"unreadable manifest.json: {err}") from None
    if not isinstance(manifest, dict):
        raise CheckpointError("manifest.json is not a JSON object")
    return manifest


def _check_path(path: str) -> str:
    """Accepts a relative POSIX path inside the step directory, other than the manifest."""
    parts = path.split("/") if isinstance(path, str) else []
    if (
        not parts
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(part in ("", ".", "..") for part in parts)
        or path in (MANIFEST, MANIFEST + ".tmp")
    ):
        raise ValueError(f"switchyard_ckpt: invalid checkpoint file path {path!r}")
    return path


def _as_bytes(path: str, data: Contents) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"switchyard_ckpt: contents of {path!r} must be bytes or str")


def _write_blob(step_dir: str, path: str, data: bytes) -> Dict[str, object]:
    target = os.path.join(step_dir, path)
    parent = os.path.dirname(target)
    if parent != step_dir:
        os.makedirs(parent, exist_ok=True)
    _write_synced(target, data)
    return {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _blob_dirs(step_dir: str, paths: Iterable[str]) -> List[str]:
    """The step directory and every folder under it that holds a blob, deepest first."""
    dirs = {step_dir}
    for path in paths:
        parts = path.split("/")[:-1]
        dirs.update(os.path.join(step_dir, *parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(dirs, key=len, reverse=True)


def _write_synced(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows cannot open directories
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _step_dirs(root: str) -> List[int]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return [int(n) for n in names if _STEP_RE.match(n) and os.path.isdir(os.path.join(root, n))]


def _prune(root: str, keep: int) -> None:
    """Keeps the newest `keep` committed steps; older step directories go, committed or not."""
    steps = sorted(_step_dirs(root), reverse=True)
    committed = [s for s in steps if os.path.exists(os.path.join(root, str(s), MANIFEST))]
    kept = committed[: max(keep, 1)]
    if not kept:
        return
    for step in steps:
        if step < kept[-1]:
            _remove_step(os.path.join(root, str(step)))


def _remove_step(step_dir: str) -> None:
    """Uncommits first (manifest gone, durably), then deletes the rest."""
    try:
        os.remove(os.path.join(step_dir, MANIFEST))
        _fsync_dir(step_dir)
    except (FileNotFoundError, NotADirectoryError):
        pass
    if os.path.isdir(step_dir) and not os.path.islink(step_dir):
        shutil.rmtree(step_dir)
    else:
        os.remove(step_dir)


def _utc_now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
