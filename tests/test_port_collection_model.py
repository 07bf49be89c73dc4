"""Property test: random membership changes, broadcasts and reads match a model.

Four channels; the collection holds their first ports. A program adds and removes members,
broadcasts, closes receivers, and reads from receivers. The model keeps, per receiver, what
should wait in its queue: messages, and a ``("lagged", n)`` notice at the head under
``DROP_OLDEST``. A member under ``DISCONNECT`` that is full is closed and reads ``EndOfChannel``
once its queue is empty. Every read must match the model; membership must always be the
model's.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from _helpers import close_ports
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import Lagged, MessageChannel, PortCollection, SlowMemberPolicy

N = 4
ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "post", "post", "post", "read", "read", "close"]),
        st.integers(0, N - 1),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(SlowMemberPolicy)), st.integers(1, 3), ops)
def test_random_programs_follow_the_model(
    policy: SlowMemberPolicy, bound: int, program: list[tuple[str, int]]
) -> None:
    """Each receiver reads exactly what the model says, in order."""

    async def main() -> None:
        pairs = [MessageChannel() for _ in range(N)]
        group = PortCollection(max_queued=bound, policy=policy)
        members: list[int] = []  # the model's membership, in order
        queues: list[list[Any]] = [[] for _ in range(N)]
        ended = [False] * N  # the collection's side was closed (DISCONNECT)
        closed = [False] * N  # the receiver closed itself
        seq = notices = 0
        for op, i in program:
            if op == "add":
                group.add(pairs[i].port1)
                if i not in members and not ended[i] and not closed[i]:
                    members.append(i)
            elif op == "remove":
                group.remove(pairs[i].port1)
                if i in members:
                    members.remove(i)
            elif op == "close":
                pairs[i].port2.close()
                closed[i] = True
                if i in members:
                    members.remove(i)
            elif op == "post":
                seq += 1
                group.post_message(seq)
                for m in list(members):
                    q = queues[m]
                    backlog = len(q) - (1 if q and q[0][0] == "lagged" else 0)
                    if policy is not SlowMemberPolicy.WAIT and backlog >= bound:
                        if policy is SlowMemberPolicy.DISCONNECT:
                            members.remove(m)
                            ended[m] = True
                            continue
                        lost = 0
                        if q and q[0][0] == "lagged":
                            lost += q.pop(0)[1]
                        else:
                            notices += 1
                        drop = backlog - bound + 1
                        lost += drop
                        del q[:drop]
                        q.insert(0, ("lagged", lost))
                    q.append(("msg", seq))
            elif op == "read" and not closed[i]:
                port = pairs[i].port2
                q = queues[i]
                if q:
                    kind, value = q.pop(0)
                    if kind == "lagged":
                        with pytest.raises(Lagged) as info:
                            await port.receive()
                        assert info.value.missed == value
                    else:
                        assert (await port.receive()).data == value
                elif ended[i]:
                    with pytest.raises(trio.EndOfChannel):
                        await port.receive()
                else:
                    assert port.statistics().queued == 0
            assert [id(p) for p in group] == [id(pairs[m].port1) for m in members]
        stats = group.statistics()
        assert stats.sent == seq
        assert stats.disconnected == sum(ended)
        assert stats.lagged == notices
        close_ports(pairs)

    trio.run(main)
