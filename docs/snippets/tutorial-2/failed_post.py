from actors import ArrayBuffer, DataCloneError, MessageChannel

channel, reply = MessageChannel(), MessageChannel()
buf = ArrayBuffer(b"data")
message = {"reply_to": reply.port2, "payload": buf, "callback": print}
try:
    channel.port1.post_message(message, transfer=[reply.port2, buf])
except DataCloneError as exc:
    print(exc)

print("reply.port2:", reply.port2)
print("buf:", buf)
print("queued at port2:", channel.port2.statistics().queued)

del message["callback"]  # fix the message and post again
channel.port1.post_message(message, transfer=[reply.port2, buf])
print("reply.port2:", reply.port2)
print("buf:", buf)
print("queued at port2:", channel.port2.statistics().queued)
