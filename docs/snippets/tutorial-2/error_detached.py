from actors import DataCloneError, MessageChannel

first, second, reply = MessageChannel(), MessageChannel(), MessageChannel()
first.port1.post_message("here", transfer=[reply.port2])  # detaches reply.port2
try:
    second.port1.post_message("and here", transfer=[reply.port2])
except DataCloneError as exc:
    print(exc)
