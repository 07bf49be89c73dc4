"""What happens to process actors when their parent is SIGKILLed (test_process_lifecycle.py).

``_orphans.py launch DIRECTORY`` makes itself a child subreaper (prctl(PR_SET_CHILD_SUBREAPER)),
so the orphans of its descendants become its children, and starts ``_orphans.py drive
DIRECTORY``: a trio program with a process actor that has a process actor of its own, each
holding a file in DIRECTORY while it runs (removed by a finally block), a process actor that
ignores cancellation with a `shutdown` deadline of 0.2 s, and another with none. Once the
driver prints their pids, the launcher SIGKILLs it and waits for the four to end, within a
bounded time, reaping those that became its children. It prints ``driver PID killed`` then,
for the child, the grandchild, the stubborn one and the patient one, ``PID=EXITCODE``
(``PID=reaped-by-its-parent`` for one whose parent outlived it), and exits 0. If one is still
running at the deadline, every descendant is killed and reaped, and the launcher exits 1
naming it.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from subprocess import PIPE

DEADLINE_SECONDS = 10
PR_SET_CHILD_SUBREAPER = 36


def _children() -> list[int]:
    pids: list[int] = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as file:
            pids.extend(int(pid) for pid in file.read().split())
    return pids


def launch(directory: str) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    deadline = time.monotonic() + DEADLINE_SECONDS
    driver = subprocess.Popen([sys.executable, __file__, "drive", directory], stdout=PIPE)
    assert driver.stdout is not None
    ready, _, _ = select.select([driver.stdout], [], [], DEADLINE_SECONDS)
    words = driver.stdout.readline().split() if ready else []
    if words[:1] != [b"pids"]:
        driver.kill()
        driver.wait()
        print(f"the driver did not report: {words}")
        return 1
    pids = [int(word) for word in words[1:]]  # the child, grandchild, stubborn, patient
    watched = {pid: os.pidfd_open(pid) for pid in pids}  # readable once it has ended
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    print("driver", driver.pid, "killed")
    for pid, fd in watched.items():
        ended, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ended:
            for left in _children():
                os.kill(left, signal.SIGKILL)
                os.waitpid(left, 0)
            print(f"{pid} still running {DEADLINE_SECONDS}s after the driver was started")
            return 1
        try:  # an orphan is ours to reap; one whose parent outlived it was reaped by it
            _, status = os.waitpid(pid, 0)
            print(f"{pid}={os.waitstatus_to_exitcode(status)}")
        except ChildProcessError:
            print(f"{pid}=reaped-by-its-parent")
    left = _children()
    if left:
        print(f"unexpected descendants: {left}")
        return 1
    return 0


def drive(directory: str) -> None:
    import _process_actors
    import trio

    import actors

    async def main() -> None:
        tree, stubborn = actors.MessageChannel(), actors.MessageChannel()
        patient = actors.MessageChannel()
        async with actors.open_supervisor() as sup:
            sup.spawn(_process_actors.spawns_a_grandchild, tree.port2, directory, process=True)
            sup.spawn(_process_actors.ignores_cancel, stubborn.port2, process=True, shutdown=0.2)
            sup.spawn(_process_actors.ignores_cancel, patient.port2, process=True, shutdown=None)
            pids = [(await port.receive()).data[1] for port in (tree.port1, tree.port1)]
            pids.append((await stubborn.port1.receive()).data[1])
            pids.append((await patient.port1.receive()).data[1])
            print("pids", *pids, flush=True)
            await trio.sleep_forever()

    trio.run(main)


if __name__ == "__main__":
    if sys.argv[1] == "launch":
        sys.exit(launch(sys.argv[2]))
    drive(sys.argv[2])
