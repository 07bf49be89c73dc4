"""For test_wire_garbage.py: a process actor that answers, and a fake child that speaks garbage.

Imported, it holds `echo`, a process actor that answers every message. Run as a script with
a process actor's argv (`SOCK LIFELINE NODE PARENT CID`, as `actors._process.child` gets
them), it reads the parent's first two frames (its routes and the `hello`), then sends what
`GARBAGE_MODE` says, and waits for the parent to hang up:

- ``bytes``: a header saying 12 bytes, then 12 bytes that are not msgpack;
- ``lie``: a well-formed ROUTES frame claiming the parent's own name.

It never waits more than 10 seconds for anything.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from typing import Any

import msgspec

_ROUTES = 8
_HEADER = struct.Struct("<II")  # a frame's length, and how many fds come with it


async def echo(inbox: Any) -> None:
    """Answer each message with the message."""
    async for event in inbox:
        event.reply(event.data)


def _read_frames(sock: socket.socket, count: int) -> None:
    buffer = b""
    seen = 0
    while seen < count:
        data = sock.recv(65536)
        if not data:
            return
        buffer += data
        while len(buffer) >= _HEADER.size:
            length, _fds = _HEADER.unpack_from(buffer)  # (fds come with none of these)
            if len(buffer) < _HEADER.size + length:
                break
            buffer = buffer[_HEADER.size + length :]
            seen += 1


def main(argv: list[str]) -> None:
    sock_fd, _lifeline, name, parent, _cid, *_ = (int(a) for a in argv)
    sock = socket.socket(fileno=sock_fd)
    sock.settimeout(10)
    _read_frames(sock, 2)
    mode = os.environ["GARBAGE_MODE"]
    if mode == "bytes":
        sock.sendall(_HEADER.pack(12, 0) + b"\xc1" * 12)
    else:
        frame = msgspec.msgpack.encode([parent, name, _ROUTES, [parent]])
        sock.sendall(_HEADER.pack(len(frame), 0) + frame)
    while sock.recv(65536):
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
