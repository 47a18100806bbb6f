"""Holds a test's experiment still and lets it run in short slices, on the test's word.

Started in a session of its own before the test starts `make train`: it finds the experiment
(`train.py` with a SWITCHYARD_RUN_ID, working inside the sandbox, leading its process group)
the moment it starts, stops its group (SIGSTOP) and says `stopped <pid> <run id>`. Then, a
line at a time on stdin:
  slice    SIGCONT, ~50 ms of running, SIGSTOP; answers `stopped`, or `gone` if it ended
  release  exits, leaving the experiment stopped (the test signals it next)
End of input lets the experiment go on (if it was found) and exits.

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


def find(sandbox):
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
            with open(f"/proc/{entry}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[2] != entry.encode():
                    continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = [v for v in f.read().split(b"\0") if v.startswith(b"SWITCHYARD_RUN_ID=")]
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue  # ended meanwhile, or not ours to read
        if env and (cwd == sandbox or cwd.startswith(sandbox + "/")):
            return int(entry), env[0].split(b"=", 1)[1].decode()
    return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except OSError:
        return False


def main():
    sandbox = os.path.realpath(sys.argv[1])
    print("ready", flush=True)
    while True:
        found = find(sandbox)
        if found:
            break
        # End of input before the experiment started: the test gave up (or died).
        if select.select([sys.stdin], [], [], 0.005)[0] and not sys.stdin.readline():
            return
    pid, run_id = found
    os.killpg(pid, signal.SIGSTOP)
    print(f"stopped {pid} {run_id}", flush=True)
    for line in sys.stdin:
        word = line.strip()
        if word == "release":
            return
        if word == "slice":
            os.killpg(pid, signal.SIGCONT)
            time.sleep(SLICE_SEC)
            try:
                os.killpg(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
            print("stopped" if alive(pid) else "gone", flush=True)
    if alive(pid):
        os.killpg(pid, signal.SIGCONT)  # the test is gone: let the run go on


if __name__ == "__main__":
    main()
