import trio
import trio.testing
from structlog.testing import capture_logs

from actors import MessageChannel


async def main():
    channel = MessageChannel()

    async def slow(event):
        await trio.sleep(0.01)
        print("slow handler done with", event.data)

    def fragile(event):
        if event.data == 1:
            raise ValueError("cannot handle 1")
        print("fragile handler got", event.data)

    channel.port2.add_event_listener("message", slow)
    channel.port2.add_event_listener("message", fragile)
    channel.port2.start()

    with capture_logs() as logs:
        channel.port1.post_message(1)
        channel.port1.post_message(2)
        await trio.sleep(0.1)
        channel.port1.close()
        channel.port2.close()

    [entry] = [e for e in logs if e["event"] == "event_listener_failed"]
    print(entry["event"], entry["log_level"], entry["event_type"], entry["listener"])
    print(repr(entry["exc_info"]))  # the exception itself, traceback attached


trio.run(main)
