"""Benchmarks: the wire codec on small messages, against raw msgspec and (for reference) pickle.

    .venv/bin/python bench/bench_wire_codec.py           # 9 repeats per figure
    .venv/bin/python bench/bench_wire_codec.py --quick   # 3 short repeats

Each figure is ns per call of ``actors._wire.codec.encode(value, [])`` and of ``decode(data,
[])``, for values every message to another process looks like: an int, a short str, a small
protocol tuple, a dict of 10 str to int; then, for context, a nested dict and a dataclass.
Baselines, measured in the same process with repeats interleaved: ``msgspec.msgpack.encode``
and ``decode`` of the same value (a raw msgspec round trip turns the tuple into a list and the
dataclass into a dict), and ``pickle.dumps``/``loads`` (a reference only: the codec never uses
pickle). Each figure is the median of its repeats. Target: within 2-3x of msgspec.
"""

from __future__ import annotations

import dataclasses
import pickle
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's actors

from actors._wire.codec import decode, encode  # after the line above


@dataclasses.dataclass
class Job:
    """A typical typed message (raw msgspec sends it as a map, and decodes a dict)."""

    name: str
    priority: int
    args: list[int]


VALUES: dict[str, object] = {
    "int": 12345,
    "short str": "hello, world",
    "tuple": ("call", 3, None),
    "dict of 10": {f"key{i}": i for i in range(10)},
    # For context, beyond the small cases: a stream of tokens on the wire.
    "nested dict": {"op": "put", "key": "k", "items": [1, 2, 3], "meta": {"n": 1}},
    "dataclass": Job("build", 3, [1, 2]),
}

_encoder, _decoder = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()


def _ns(call: Callable[[], object], number: int) -> float:
    return timeit.timeit(call, number=number) / number * 1e9


def measure(value: object, repeats: int, number: int) -> dict[str, float]:
    ours, raw, pickled = encode(value, [])[0], _encoder.encode(value), pickle.dumps(value)
    calls: dict[str, Callable[[], object]] = {
        "encode": lambda: encode(value, []),
        "decode": lambda: decode(ours, []),
        "msgspec encode": lambda: _encoder.encode(value),
        "msgspec decode": lambda: _decoder.decode(raw),
        "pickle dumps": lambda: pickle.dumps(value),
        "pickle loads": lambda: pickle.loads(pickled),
    }
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for repeat in range(repeats):
        order = list(calls) if repeat % 2 == 0 else list(reversed(calls))
        for name in order:
            samples[name].append(_ns(calls[name], number))
    return {name: statistics.median(times) for name, times in samples.items()}


def main() -> None:
    quick = "--quick" in sys.argv
    repeats, number = (3, 20_000) if quick else (9, 200_000)
    print(f"ns per call, median of {repeats} repeats of {number} calls")
    print(
        f"{'value':<12} {'encode':>7} {'msgspec':>8} {'pickle':>7} {'ratio':>6}   "
        f"{'decode':>7} {'msgspec':>8} {'pickle':>7} {'ratio':>6}"
    )
    for name, value in VALUES.items():
        m = measure(value, repeats, number)
        print(
            f"{name:<12} {m['encode']:>7.0f} {m['msgspec encode']:>8.0f} "
            f"{m['pickle dumps']:>7.0f} {m['encode'] / m['msgspec encode']:>5.2f}x   "
            f"{m['decode']:>7.0f} {m['msgspec decode']:>8.0f} {m['pickle loads']:>7.0f} "
            f"{m['decode'] / m['msgspec decode']:>5.2f}x"
        )


if __name__ == "__main__":
    main()
