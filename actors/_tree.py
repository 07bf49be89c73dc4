"""ActorTree: a snapshot of a live supervision tree, printable as text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, final

import attrs

if TYPE_CHECKING:
    from ._actor import ActorHandle
    from ._supervisor import Supervisor

__all__ = ["ActorTree", "supervisor_node"]


@final
@attrs.frozen
class ActorTree:
    """One node of [`Supervisor.tree()`][actors.Supervisor.tree]: a supervisor or an actor,
    with what is under it.

    `str(tree)` draws the whole tree, one line per node: a supervisor's path, `[strategy]`
    and the restarts it made (if any); an actor's name, state, incarnation, its own restarts
    (if any), its pid (a process actor), open ports and queued messages (if any). An actor
    that opened a supervisor without a `name` shows that supervisor's `[strategy]` at the
    end of its own line and its children under it; a named one is a node of its own under
    the actor. A process actor's own supervisors and children live in its process and are
    not shown under it. A snapshot: it does not change as the tree does.
    """

    path: str
    """The node's path, e.g. `root/db/writer`."""
    kind: str
    """`"supervisor"` for a supervisor node, `"actor"` for an actor (which may also
    supervise: see `strategy`)."""
    state: str
    """An actor's [`ActorState`][actors.ActorState] value (`"running"`, ...); `"supervising"`
    for a supervisor node."""
    incarnation: int
    """An actor's current incarnation (0 for a supervisor node)."""
    pid: int | None
    """A process actor's process id while it runs ([`ActorHandle.pid`][actors.ActorHandle.pid]);
    `None` for an actor in this process, a process actor that is down, and a supervisor."""
    ports: int
    """Open ports the actor owns."""
    queued: int
    """Messages waiting at the ports it was spawned with."""
    restarts: int
    """An actor's restarts; for a supervisor, the restarts it made."""
    strategy: str | None
    """The [`RestartStrategy`][actors.RestartStrategy] value (`"one_for_one"`, ...) of the
    supervisor at this node, if there is one."""
    children: tuple[ActorTree, ...]
    """The nodes under this one, in spawn order."""

    @property
    def name(self) -> str:
        """The last segment of the path."""
        return self.path.rpartition("/")[2]

    def walk(self) -> Iterator[ActorTree]:
        """This node and every node under it, depth first, in spawn order.

        Yields:
            This node first, then each child's subtree in turn.
        """
        yield self
        for child in self.children:
            yield from child.walk()

    def __str__(self) -> str:
        return "\n".join(self._lines("", "", top=True))

    def _describe(self, top: bool) -> str:
        parts = [self.path if top else self.name]
        if self.kind == "actor":
            # the actor's own figures first, so "restarts" never reads as its supervisor's
            parts += [self.state, f"incarnation {self.incarnation}"]
            if self.restarts:
                parts.append(f"restarts {self.restarts}")
            if self.pid is not None:
                parts.append(f"pid {self.pid}")
            parts.append(f"ports {self.ports}")
            if self.queued:
                parts.append(f"queued {self.queued}")
        if self.strategy is not None:
            parts.append(f"[{self.strategy}]")
        if self.kind == "supervisor" and self.restarts:
            parts.append(f"restarts {self.restarts}")
        return "  ".join(parts)

    def _lines(self, first: str, rest: str, top: bool = False) -> Iterator[str]:
        yield first + self._describe(top)
        for i, child in enumerate(self.children):
            last = i == len(self.children) - 1
            yield from child._lines(
                rest + ("└── " if last else "├── "), rest + ("    " if last else "│   ")
            )


def supervisor_node(sup: Supervisor) -> ActorTree:
    """The tree under `sup`, as it is now."""
    return ActorTree(
        path=sup._path,
        kind="supervisor",
        state="supervising",
        incarnation=0,
        pid=None,
        ports=0,
        queued=0,
        restarts=sup._restarts,
        strategy=sup._strategy.value,
        children=tuple(_actor_node(child) for child in sup._children),
    )


def _actor_node(actor: ActorHandle) -> ActorTree:
    stats = actor.statistics()
    strategy = None
    children: list[ActorTree] = []
    for sup in actor._supervisors or ():
        node = supervisor_node(sup)
        if sup._path == actor._path and strategy is None:  # its own supervisor: fold it in
            strategy = node.strategy
            children.extend(node.children)
        else:
            children.append(node)
    return ActorTree(
        path=actor._path,
        kind="actor",
        state=stats.state.value,
        incarnation=stats.incarnation,
        pid=actor._pid,
        ports=stats.ports,
        queued=stats.queued,
        restarts=stats.restarts,
        strategy=strategy,
        children=tuple(children),
    )
