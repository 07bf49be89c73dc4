"""Property test: random exits under every strategy match a small model of OTP's rules.

Each program spawns a few children with random restart types, then makes live children
crash or return at random times (on an autojump clock). After every exit, each child's
incarnation and liveness, and whether the supervisor gave up, must be what the model says:

- an exit that is not restarted (TEMPORARY; TRANSIENT returning) ends that child alone;
- otherwise it is one restart: more than ``max_restarts`` within ``within`` seconds gives
  up (everything ends); else the strategy's group restarts, TEMPORARY members of the group
  end instead, and every other member of the group begins a new incarnation.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import actors
from actors import Restart, RestartStrategy, TooManyRestartsError, open_supervisor


class Boom(Exception):
    """A scripted crash."""


class Model:
    def __init__(self, restarts: list[Restart], strategy: RestartStrategy, max_restarts: int):
        self.restart_types = restarts
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.incarnation = [1] * len(restarts)
        self.alive = [True] * len(restarts)
        self.times: list[float] = []
        self.gave_up = False

    def exit(self, child: int, crashed: bool, now: float, within: float) -> None:
        kind = self.restart_types[child]
        if kind is Restart.TEMPORARY or (kind is Restart.TRANSIENT and not crashed):
            self.alive[child] = False
            return
        self.times = [t for t in self.times if t >= now - within] + [now]  # OTP: T >= Now - Period
        if len(self.times) > self.max_restarts:
            self.gave_up = True
            self.alive = [False] * len(self.alive)
            return
        if self.strategy is RestartStrategy.ONE_FOR_ALL:
            group = [i for i, a in enumerate(self.alive) if a]
        elif self.strategy is RestartStrategy.REST_FOR_ONE:
            group = [i for i, a in enumerate(self.alive) if a and i >= child]
        else:
            group = [child]
        for i in group:
            if i != child and self.restart_types[i] is Restart.TEMPORARY:
                self.alive[i] = False
            else:
                self.incarnation[i] += 1


programs = st.tuples(
    st.lists(st.sampled_from(list(Restart)), min_size=1, max_size=4),
    st.sampled_from(list(RestartStrategy)),
    st.integers(0, 4),
    st.lists(
        st.tuples(st.integers(0, 3), st.booleans(), st.sampled_from([0.0, 0.5, 1.0, 3.0])),
        max_size=12,
    ),
)


@settings(max_examples=300, deadline=None)
@given(programs)
def test_random_exits_follow_the_model(program: Any) -> None:
    """Incarnations, liveness and giving up match the model after every exit."""
    restarts, strategy, max_restarts, steps = program
    within = 2.0
    model = Model(restarts, strategy, max_restarts)
    orders: dict[str, trio.Event] = {}
    actions: dict[str, bool] = {}

    async def child() -> None:
        name = actors.current_actor().name
        orders[name] = event = trio.Event()
        await event.wait()
        if actions[name]:
            raise Boom(name)

    async def main() -> None:
        async with open_supervisor(
            strategy=strategy, max_restarts=max_restarts, within=within
        ) as sup:
            handles = [sup.spawn(child, name=f"c{i}", restart=r) for i, r in enumerate(restarts)]
            await trio.testing.wait_all_tasks_blocked()
            for index, crashed, pause in steps:
                await trio.sleep(pause)
                live = [i for i, a in enumerate(model.alive) if a]
                if not live or model.gave_up:
                    break
                target = live[index % len(live)]
                name = f"c{target}"
                actions[name] = crashed
                orders[name].set()
                model.exit(target, crashed, trio.current_time(), within)
                await trio.testing.wait_all_tasks_blocked()
                if model.gave_up:
                    await trio.sleep_forever()  # cancelled as the supervisor gives up
                assert [h.incarnation for h in handles] == model.incarnation
                assert [h in sup.children for h in handles] == model.alive
            sup.cancel()

    try:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    except TooManyRestartsError:
        assert model.gave_up
    else:
        assert not model.gave_up


def test_the_model_gives_up_like_the_docs_say() -> None:
    """A sanity check of the model itself: the 2nd restart within the window, max 1."""
    model = Model([Restart.PERMANENT], RestartStrategy.ONE_FOR_ONE, 1)
    model.exit(0, True, 0.0, 2.0)
    assert not model.gave_up
    model.exit(0, True, 1.0, 2.0)
    assert model.gave_up
