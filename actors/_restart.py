"""Restart policy values: strategies, restart types, back-off, and supervisor statistics."""

from __future__ import annotations

import enum
from typing import final

import attrs

__all__ = ["Backoff", "Restart", "RestartStrategy", "SupervisorStatistics"]


@final
class RestartStrategy(enum.Enum):
    """Which children a supervisor restarts when one of them must be restarted (OTP's)."""

    ONE_FOR_ONE = "one_for_one"
    """Only that child."""
    ONE_FOR_ALL = "one_for_all"
    """Every child: the others are stopped, then all start again in spawn order."""
    REST_FOR_ONE = "rest_for_one"
    """That child and every child spawned after it."""


@final
class Restart(enum.Enum):
    """When a child is restarted after it ends (OTP's restart types)."""

    PERMANENT = "permanent"
    """Always: after a crash and after a normal return."""
    TRANSIENT = "transient"
    """Only after a crash; a normal return stops it for good."""
    TEMPORARY = "temporary"
    """Never: it stops for good however it ends (a crash is still logged)."""


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"Backoff.{attribute.name} must be positive, not {value!r}")


def _at_least_one(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 1:
        raise ValueError(f"Backoff.{attribute.name} must be at least 1, not {value!r}")


@final
@attrs.frozen
class Backoff:
    """Exponential restart back-off: wait `min(cap, initial * factor**k)` seconds before the
    restart of a child that was already restarted `k` times within the intensity window.

    Make one with `Backoff(initial=0.1, factor=2.0, cap=5.0)` (these are the defaults; each
    keyword is the attribute of that name) and pass it to
    [`open_supervisor`][actors.open_supervisor] as `backoff=`. Frozen.

    Raises:
        ValueError: `initial` or `cap` is not positive, or `factor` is below 1.
    """

    initial: float = attrs.field(default=0.1, validator=_positive)
    """The wait before the first restart, in seconds (positive)."""
    factor: float = attrs.field(default=2.0, validator=_at_least_one)
    """What each further restart multiplies the wait by (at least 1)."""
    cap: float = attrs.field(default=5.0, validator=_positive)
    """The longest wait, in seconds (positive)."""

    def delay(self, recent: int) -> float:
        """The wait before a restart preceded by `recent` restarts of the same child.

        Args:
            recent: restarts of that child within the intensity window.

        Returns:
            The wait in seconds: `min(cap, initial * factor**recent)`.
        """
        try:
            return min(self.cap, self.initial * self.factor**recent)
        except OverflowError:  # factor**recent is beyond a float: far beyond the cap
            return self.cap


@final
@attrs.frozen
class SupervisorStatistics:
    """A snapshot of a supervisor, from [`statistics()`][actors.Supervisor.statistics]."""

    path: str
    """Its place in the tree (`root` for a top-level supervisor named by default)."""
    strategy: RestartStrategy
    """How it restarts its children."""
    children: int
    """Children not yet stopped for good."""
    running: int
    """Children in state `RUNNING` (an incarnation scheduled or running)."""
    restarting: int
    """Children in state `RESTARTING`: being stopped for a restart, or down and waiting to
    start again."""
    stopping: int
    """Children in state `STOPPING`: stopped for good once their incarnation has ended.
    `running + restarting + stopping == children`."""
    restarts: int
    """Restarts since it was opened (a group restart counts once)."""
    intensity_left: int
    """Restarts it can still make within the current window before it gives up."""
    gave_up: bool
    """Whether it gave up (too many restarts)."""
