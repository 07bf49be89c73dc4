import logging

import structlog
import trio
import trio.testing

from actors import MessageChannel, PortCollection, Restart, open_supervisor

# Keep the crash log out of this example (see Logging in actors.md).
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


async def listener(name, task_status=trio.TASK_STATUS_IGNORED):
    line = MessageChannel()  # made by this incarnation: its ports close when it ends

    def heard(event):
        if event.data == f"{name}, fall over":
            raise RuntimeError(f"{name} fell over")  # a handler that raises crashes the actor
        print(f"  {name} got {event.data!r}")

    line.port1.onmessage = heard
    task_status.started(line.port2)  # port2 moves to whoever started us: that is joining
    await trio.sleep_forever()


async def main():
    group = PortCollection()
    async with open_supervisor() as sup:
        for name in ["ann", "bob", "cy"]:
            port = await sup.start(listener, name, name=name, restart=Restart.TEMPORARY)
            # The group holds ports weakly: a listener keeps this one alive while entangled.
            port.onclose = lambda event, name=name: print(f"  {name} is gone: {len(group)} left")
            port.start()  # a close event needs a started port
            group.add(port)
        print(f"{len(group)} members")
        group.post_message("hello, all")
        await trio.testing.wait_all_tasks_blocked()

        print("bob crashes (TEMPORARY: he stays down)")
        group.post_message("bob, fall over")
        await trio.testing.wait_all_tasks_blocked()

        print("cy is stopped for good")
        sup.children[-1].cancel()  # the children still running: ann, cy
        await trio.testing.wait_all_tasks_blocked()
        print(f"{len(group)} member, and nobody called remove()")
        sup.cancel()


trio.run(main)
