"""ask(): request/reply over a fresh MessageChannel whose port travels with the request."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import trio

from ._clone import transfer_items
from ._overdue import WARN_AFTER, watch
from ._owner import CURRENT, Incarnation
from ._ports import MessageChannel, MessagePort
from ._threads import outside_run, wrong_thread

__all__ = ["ask"]


UNANSWERED_HINT = (
    "the replier has not answered: it may hold the request without calling event.reply()"
    " (answering on another port instead), or be stuck; if it may rightly take this long,"
    " give the ask a deadline with trio.fail_after(...), or pass warn_after=None"
)


def _unanswered(port: MessagePort, owner: Incarnation | None) -> dict[str, object]:
    return {
        "actor": None if owner is None else owner.actor._path,
        "port": port._core.id if port._core is not None else None,
        "hint": UNANSWERED_HINT,
    }


async def ask(
    port: MessagePort,
    message: object,
    *,
    transfer: Iterable[object] | None = None,
    warn_after: float | None = WARN_AFTER,
) -> Any:
    """Post `message` on `port` with a new reply port, and return the reply's data.

    A fresh [`MessageChannel`][actors.MessageChannel] is made for the reply: one end travels
    with the request as the *last* entry of the transfer list (so it is `event.ports[-1]` for
    the replier, after whatever `transfer` lists), and this call waits on the other. The
    replier answers with [`event.reply(value)`][actors.MessageEvent.reply]. Put ports you reply
    with inside `value`: only the data is returned.

    Cancelling this call (a cancel scope, `trio.fail_after`) closes the reply port, so the
    replier sees `onclose` and `event.reply()` returns `False`.

    There is no timeout of its own (trio's rule: set one with `trio.fail_after`), but an ask
    is never left to hang silently: one still unanswered after `warn_after` seconds is logged
    once as an `ask_unanswered` warning, naming the port and the asking actor. The ask goes
    on waiting.

    Args:
        port: the port to post the request on; whoever receives at its peer replies.
        message: the request, cloned as by
            [`post_message`][actors.MessagePort.post_message].
        transfer: ports and buffers in `message` to move, as for `post_message`.
        warn_after: seconds after which a still unanswered ask is reported (5 by default,
            the timeout of OTP's `gen_server:call`); `None` never reports it.

    Returns:
        The `data` of the reply: a clone of the `value` given to `event.reply()`.

    Raises:
        trio.BrokenResourceError: the replier closed the reply port, or died without
            replying (its ports are closed when it ends), or `port`'s peer was already gone.
        trio.ClosedResourceError: `port` was closed or transferred away here.
        DataCloneError: as for `post_message`; nothing was sent.
        TypeError: `transfer` is not iterable; nothing was sent.
        RuntimeError: called from a thread outside the trio run that owns `port` (call it
            through `trio.from_thread.run(actors.ask, port, message)`); nothing was sent.
    """
    core = port._core
    if core is not None and outside_run(core.thread):
        raise wrong_thread(
            "actors.ask()",
            "port",
            "call it through trio.from_thread.run(actors.ask, port, message)",
        )
    await trio.lowlevel.checkpoint_if_cancelled()
    if port._core is None:
        raise trio.ClosedResourceError(f"this MessagePort was {port._state}")
    channel = MessageChannel()
    mine, theirs = channel.port1, channel.port2
    try:
        if port._core.peer is None:
            raise trio.BrokenResourceError("the peer port is closed: nobody can reply")
        if transfer is None:
            port._post_asking(message, theirs)
        else:
            port.post_message(message, [*transfer_items(transfer), theirs])
        watched = watch(warn_after, "ask_unanswered", _unanswered, port, CURRENT.get())
        try:
            event = await mine.receive()
        except trio.EndOfChannel:
            raise trio.BrokenResourceError(
                "the reply port closed without a reply: the replier closed it, stopped while"
                " holding it, or it never reached a live replier"
            ) from None
        finally:
            if watched is not None:
                watched.done()
    finally:
        mine._close()  # (the thread was checked above)
        theirs._close()  # still ours if posting failed
    return event.data
