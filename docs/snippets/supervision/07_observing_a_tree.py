import trio
import trio.testing

from actors import MessageChannel, RestartStrategy, open_supervisor


async def idle(*ports):
    await trio.sleep_forever()


async def db(requests):
    async with open_supervisor(strategy=RestartStrategy.ONE_FOR_ALL) as sup:
        sup.spawn(idle, requests, name="writer")  # the port moves on to the writer
        sup.spawn(idle, name="reader")


async def web():
    channel = MessageChannel()  # two ports this incarnation owns
    await trio.sleep_forever()


async def main():
    requests = MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(db, requests.port2)
        sup.spawn(web)
        requests.port1.post_message("for the writer, which never reads")
        await trio.testing.wait_all_tasks_blocked()
        tree = sup.tree()
        print(tree)
        print([node.path for node in tree.walk()])
        print(sup.statistics())
        sup.cancel()


trio.run(main)
