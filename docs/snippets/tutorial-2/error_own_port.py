from actors import DataCloneError, MessageChannel

channel = MessageChannel()
try:
    channel.port1.post_message("myself", transfer=[channel.port1])
except DataCloneError as exc:
    print(exc)
