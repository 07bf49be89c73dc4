from actors import DataCloneError, MessageChannel

channel, reply = MessageChannel(), MessageChannel()
try:
    channel.port1.post_message({"reply_to": reply.port2})  # no transfer list
except DataCloneError as exc:
    print(exc)
