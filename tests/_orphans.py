"""What happens to process actors when their parent is SIGKILLed (test_process_lifecycle.py).

``_orphans.py launch`` makes itself a child subreaper (prctl(PR_SET_CHILD_SUBREAPER)), so the
orphans of its descendants become its children, and starts ``_orphans.py drive``: a trio
program with a process actor that has a process actor of its own. Once the driver prints
their pids, the launcher SIGKILLs it and reaps every descendant, each within a bounded time.
It prints ``driver PID killed`` then ``PID=EXITCODE`` for each of the two, and exits 0; a
descendant still running at the deadline is killed, and the launcher exits 1 naming it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

DEADLINE_SECONDS = 10
PR_SET_CHILD_SUBREAPER = 36


class _Late(Exception):
    pass


def _late(signum: int, frame: object) -> None:
    raise _Late


def _children() -> list[int]:
    pids: list[int] = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as file:
            pids.extend(int(pid) for pid in file.read().split())
    return pids


def launch() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    signal.signal(signal.SIGALRM, _late)
    signal.setitimer(signal.ITIMER_REAL, DEADLINE_SECONDS)
    driver = subprocess.Popen([sys.executable, __file__, "drive"], stdout=subprocess.PIPE)
    assert driver.stdout is not None
    try:
        words = driver.stdout.readline().split()
        assert words[:1] == [b"pids"], words
        pids = {int(word) for word in words[1:]}
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        print("driver", driver.pid, "killed")
        exits: dict[int, int] = {}
        while set(exits) != pids:
            pid, status = os.waitpid(-1, 0)
            exits[pid] = os.waitstatus_to_exitcode(status)
        signal.setitimer(signal.ITIMER_REAL, 0)
    except _Late:
        left = _children()
        for pid in left:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        print(f"still running {DEADLINE_SECONDS}s after the driver was killed: {left}")
        return 1
    for pid, code in exits.items():
        print(f"{pid}={code}")
    left = _children()
    if left:
        print(f"unexpected descendants: {left}")
        return 1
    return 0


def drive() -> None:
    import _process_actors
    import trio

    import actors

    async def main() -> None:
        channel = actors.MessageChannel()
        async with actors.open_supervisor() as sup:
            sup.spawn(_process_actors.spawns_a_grandchild, channel.port2, process=True)
            pids = [(await channel.port1.receive()).data[1] for _ in range(2)]
            print("pids", *pids, flush=True)
            await trio.sleep_forever()

    trio.run(main)


if __name__ == "__main__":
    if sys.argv[1] == "launch":
        sys.exit(launch())
    drive()
