import threading

import trio

from actors import MessageChannel


async def main():
    work, ping = MessageChannel(), MessageChannel()
    answered = threading.Event()
    ping.port2.onmessage = lambda event: answered.set()  # a handler of another port
    done = trio.Event()

    def blocking_handler(event):
        ping.port1.post_message("are you there?")
        # A blocking call (time.sleep, a blocking socket, a lock, this wait) stops the
        # whole run: the other port's handler cannot run until this one returns.
        print("blocking handler: the other port answered:", answered.wait(timeout=0.3))
        done.set()

    async def handler_with_a_thread(event):
        ping.port1.post_message("are you there?")
        # The same blocking call in a worker thread: the run goes on meanwhile.
        in_time = await trio.to_thread.run_sync(answered.wait, 5)
        print("handler with a thread: the other port answered:", in_time)
        done.set()

    for handler in (blocking_handler, handler_with_a_thread):
        answered.clear()
        done = trio.Event()
        work.port2.onmessage = handler
        work.port1.post_message("a job")
        await done.wait()
    for port in (work.port1, work.port2, ping.port1, ping.port2):
        port.close()


trio.run(main)
