import trio

from actors import MessageChannel


def worker(port):
    try:
        port.close()  # not from here: the port belongs to the run
    except RuntimeError as error:
        print(error)


async def main():
    channel = MessageChannel()
    await trio.to_thread.run_sync(worker, channel.port1)
    print("still entangled:", channel.port1.statistics().entangled)
    channel.port1.close()


trio.run(main)
