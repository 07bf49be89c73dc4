import trio
import trio.testing

import actors
from actors import MessageChannel, Restart, open_supervisor


async def price_list(updates, questions):
    """Take price updates on one port; answer questions about prices on the other."""
    prices = {}

    async def take_updates():
        async for event in updates:
            item, price = event.data
            prices[item] = price

    async def answer_questions():
        async for event in questions:
            event.reply(prices.get(event.data))

    async with trio.open_nursery() as nursery:  # one loop per port, each in a task
        nursery.start_soon(take_updates)
        nursery.start_soon(answer_questions)
    print("price_list: both peers are closed, so I return")


async def main():
    updates, questions = MessageChannel(), MessageChannel()
    async with open_supervisor() as sup:
        sup.spawn(
            price_list,
            updates.port2,
            questions.port2,
            restart=Restart.TRANSIENT,
        )
        updates.port1.post_message(("tea", 3))
        updates.port1.post_message(("cake", 4))
        # There is no order between two channels: let the updates land before asking.
        await trio.testing.wait_all_tasks_blocked()
        print("cake:", await actors.ask(questions.port1, "cake"))
        print("milk:", await actors.ask(questions.port1, "milk"))

        updates.port1.close()  # ends one loop; the other still answers
        print("tea:", await actors.ask(questions.port1, "tea"))
        questions.port1.close()  # ends the other loop, and the actor returns


trio.run(main)
