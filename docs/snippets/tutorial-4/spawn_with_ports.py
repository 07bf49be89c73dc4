import trio

from actors import ArrayBuffer, MessageChannel, Restart, open_supervisor


async def greeter(inbox, settings):
    async for event in inbox:
        greeting = bytes(settings["greeting"]).decode()
        settings["log"].post_message(f"{greeting}, {event.data}!")


async def main():
    requests, log = MessageChannel(), MessageChannel()
    settings = {"greeting": ArrayBuffer(b"hello"), "log": log.port1}
    async with open_supervisor() as sup:
        sup.spawn(greeter, requests.port2, settings, restart=Restart.TRANSIENT)
        print("requests.port2:", requests.port2)  # moved into the actor
        print("settings['log']:", settings["log"])  # moved too
        print("settings['greeting']:", settings["greeting"])  # a buffer moves too
        settings["greeting"] = ArrayBuffer(b"goodbye")  # the actor has its own dict
        requests.port1.post_message("world")
        print((await log.port2.receive()).data)
        requests.port1.close()  # greeter's loop ends, and it stops for good


trio.run(main)
