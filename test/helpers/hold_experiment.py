"""Holds a test's experiment still and lets it run in short slices, on the test's word.

Started in a session of its own before the test starts `make train`: it finds the experiment
(`train.py` with a SWITCHYARD_RUN_ID, leading its process group, working inside the sandbox,
the first argument; or, where that is `--env NAME=VALUE`, carrying that in its environment: a
test host's processes, which see their home where this machine sees another folder)
the moment it starts, stops its group (SIGSTOP) and says `stopped <pid> <run id>`. Then, a
line at a time on stdin:
  slice    SIGCONT, ~50 ms of running, SIGSTOP; answers `stopped`, or `gone` if it ended
  release  exits, leaving the experiment stopped (the test signals it next)
End of input lets the experiment go on (if it was found) and exits.

The reaper Switchyard starts beside the experiment is born in the experiment's group and
leaves it for a session of its own a moment later. A stop in that moment would hold it too,
and a runner killed then would leave nobody to kill the experiment: a hold no real run meets.
So after every stop the launch's own helpers run on alone until they have left the group.

A test could not do this from its own process: on a loaded machine the kernel shares the CPU
between sessions, and the experiment (a session of its own) can run for seconds between two
turns of a test that shares its session with the whole suite. This process sleeps between
its steps, so it is woken on time.
"""
import os
import select
import signal
import sys
import time

SLICE_SEC = 0.05


def stat_fields(pid):
    """/proc/<pid>/stat's fields after the command name: state first, then ppid, pgrp, ...
    (the name, in parentheses, may hold spaces). OSError when the process is gone."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()


def find(sandbox, mark):
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"train.py" not in f.read():
                    continue
            # The experiment leads its process group: it is the shell Switchyard starts it with,
            # which execs it. Subshells (the one that starts the reaper, those of a pyenv shim)
            # carry the same command line and environment, but not the group's pid.
            if stat_fields(entry)[2] != entry.encode():
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue  # ended meanwhile, or not ours to read
        run = [v for v in env if v.startswith(b"SWITCHYARD_RUN_ID=")]
        here = mark in env if mark else cwd == sandbox or cwd.startswith(sandbox + "/")
        if run and here:
            return int(entry), run[0].split(b"=", 1)[1].decode()
    return None


def alive(pid):
    try:
        return stat_fields(pid)[0] not in (b"Z", b"X")
    except OSError:
        return False


def launch_helpers(pgid):
    """The processes of the group, its leader aside, that run Switchyard's launch script: the
    subshell that starts the reaper, and the reaper before it leaves for a session of its own."""
    helpers = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == pgid:
            continue
        try:
            if int(stat_fields(entry)[2]) != pgid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"switchyard-reaper" in f.read():
                    helpers.append(int(entry))
        except OSError:
            continue  # ended meanwhile
    return helpers


def stop(pgid):
    """Stops the group, then lets the launch's helpers (see above) go on until they are gone."""
    os.killpg(pgid, signal.SIGSTOP)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        helpers = launch_helpers(pgid)
        if not helpers:
            return
        for helper in helpers:
            try:
                os.kill(helper, signal.SIGCONT)
            except ProcessLookupError:
                pass
        time.sleep(0.005)
    raise SystemExit(f"hold_experiment.py: the reaper of group {pgid} did not leave it within 30 s")


def main():
    mark = sys.argv[2].encode() if sys.argv[1] == "--env" else None
    sandbox = None if mark else os.path.realpath(sys.argv[1])
    print("ready", flush=True)
    while True:
        found = find(sandbox, mark)
        if found:
            break
        # End of input before the experiment started: the test gave up (or died).
        if select.select([sys.stdin], [], [], 0.005)[0] and not sys.stdin.readline():
            return
    pid, run_id = found
    stop(pid)
    print(f"stopped {pid} {run_id}", flush=True)
    for line in sys.stdin:
        word = line.strip()
        if word == "release":
            return
        if word == "slice":
            os.killpg(pid, signal.SIGCONT)
            time.sleep(SLICE_SEC)
            try:
                stop(pid)
            except ProcessLookupError:
                pass
            print("stopped" if alive(pid) else "gone", flush=True)
    if alive(pid):
        os.killpg(pid, signal.SIGCONT)  # the test is gone: let the run go on


if __name__ == "__main__":
    main()
