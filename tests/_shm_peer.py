"""The child process of test_buffers_shm.py: answers frames on the socket whose fd is argv[1].

Each request is a frame whose payload is a JSON object (never pickle), with fds; each answer
is a frame too. Requests, by ``op``:

- ``echo`` (one fd, ``length``): adopt the buffer, write ``write`` = [offset, byte] into it if
  given, and send it back (export), with its SHA-256 (unless ``digest`` is false) and the bytes
  this frame took on the socket.
- ``hold`` (one fd, ``length``): adopt the buffer and keep it until the process ends.
- ``fds``: the number of fds this process has open.
- ``bad`` (``kind``): send an fd of that kind ("pipe", "small") claiming ``length`` bytes.

A request whose fd ``adopt`` refuses is answered with ``{"error": ...}``. The process ends when
the parent closes the socket.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys

import trio

from actors._wire import shm


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _answer(
    sock: trio.socket.SocketType,
    held: list[object],
    request: dict[str, object],
    fds: list[int],
    received: int,
) -> None:
    op = request["op"]
    if op in ("echo", "hold"):
        length = request["length"]
        assert isinstance(length, int)
        try:
            [fd] = fds
            buf = shm.adopt(fd, length)
        except (ValueError, shm.BadFdError) as exc:
            shm.close_fds(fds)
            await shm.send_frame(sock, json.dumps({"error": str(exc)}).encode())
            return
        if op == "hold":
            held.append(buf)
            await shm.send_frame(sock, json.dumps({"held": len(held)}).encode())
            return
        write = request.get("write")
        with buf.view() as view:
            digest = hashlib.sha256(view).hexdigest() if request.get("digest", True) else ""
            if isinstance(write, list):
                view[write[0]] = write[1]
        answer = {"sha256": digest, "received": received, "length": length}
        exported = shm.export(buf)
        assert exported is not None
        with exported:
            await shm.send_frame(sock, json.dumps(answer).encode(), [exported.fd])
        return
    shm.close_fds(fds)
    if op == "fds":
        await shm.send_frame(sock, json.dumps({"fds": _fd_count()}).encode())
    elif op == "bad":
        if request["kind"] == "pipe":
            read, write = os.pipe()
            os.close(write)
            bad = read
        else:
            bad = os.memfd_create("small", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.ftruncate(bad, 1)
        try:
            answer = {"length": request["length"]}
            await shm.send_frame(sock, json.dumps(answer).encode(), [bad])
        finally:
            os.close(bad)


async def main(fd: int) -> None:
    sock = trio.socket.from_stdlib_socket(socket.socket(fileno=fd))
    held: list[object] = []
    with sock:
        while True:
            try:
                payload, fds = await shm.receive_frame(sock)
            except trio.EndOfChannel:
                return
            await _answer(sock, held, json.loads(payload), fds, 12 + len(payload))


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
