"""The raw baseline of ``bench_workers.py``: a trio process that speaks length-prefixed msgpack.

    python bench/_raw_peer.py FD

It serves one ``AF_UNIX`` stream socket (inherited as ``FD``) until the other side closes it,
with the same protocol as ``_worker_actors.serve`` but no library: a frame is a 4-byte
little-endian length and a msgpack value (encoded and decoded with msgspec).

- an int: sent back (decoded and encoded again, as the actor does);
- ``"count"``: the ints that follow are counted, until ``None``, whose answer is the count;
- ``["bytes", n]``: ``n`` raw bytes follow, received into a buffer allocated once, and sent
  back raw (the cheapest copy there is: no allocation, no framing of the bytes).

It imports nothing of ``actors``, so its memory is that of a bare trio + msgspec process.
"""

from __future__ import annotations

import socket
import struct
import sys

import msgspec
import trio

LENGTH = struct.Struct("<I")
encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder().decode


def frame(value: object) -> bytes:
    payload = encode(value)
    return LENGTH.pack(len(payload)) + payload


async def serve(fd: int) -> None:
    sock = trio.socket.from_stdlib_socket(socket.socket(fileno=fd))
    buffer = bytearray()
    counting = False
    count = 0
    big: dict[int, bytearray] = {}
    with sock:
        while True:
            data = await sock.recv(256 * 1024)
            if not data:
                return
            buffer += data
            start, end = 0, len(buffer)
            out: list[bytes] = []
            while end - start >= 4:
                (length,) = LENGTH.unpack_from(buffer, start)
                if end - start - 4 < length:
                    break
                value = decode(memoryview(buffer)[start + 4 : start + 4 + length])
                start += 4 + length
                if counting:
                    if value is None:
                        out.append(frame(count))
                        counting = False
                    else:
                        count += 1
                elif type(value) is int:
                    out.append(frame(value))
                elif value == "count":
                    counting, count = True, 0
                elif type(value) is list and value[0] == "bytes":
                    n = value[1]
                    into = big.setdefault(n, bytearray(n))
                    have = min(n, end - start)
                    into[:have] = buffer[start : start + have]
                    start += have
                    with memoryview(into) as view:
                        while have < n:
                            got = await sock.recv_into(view[have:])
                            if not got:
                                return
                            have += got
                        await send_all(sock, view)
            del buffer[:start]
            if out:
                await send_all(sock, memoryview(b"".join(out)))


async def send_all(sock: trio.socket.SocketType, view: memoryview) -> None:
    sent = 0
    while sent < len(view):
        sent += await sock.send(view[sent:])


if __name__ == "__main__":
    trio.run(serve, int(sys.argv[1]))
