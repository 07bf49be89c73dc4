from actors import DataCloneError, MessageChannel

channel, reply = MessageChannel(), MessageChannel()
try:
    channel.port1.post_message("twice", transfer=[reply.port2, reply.port2])
except DataCloneError as exc:
    print(exc)
