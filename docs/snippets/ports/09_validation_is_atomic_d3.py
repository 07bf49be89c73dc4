from actors import ArrayBuffer, DataCloneError, MessageChannel

channel = MessageChannel()
closed = MessageChannel().port1
closed.close()
buf = ArrayBuffer(8)

for transfer in ([buf, closed], [buf, buf], [buf, channel.port1], [buf, "text"]):
    try:
        channel.port1.post_message(buf, transfer=transfer)
    except DataCloneError as exc:
        print(exc)

print("buffer detached:", buf.detached, "| still entangled:", channel.port1.statistics().entangled)
