from actors import DataCloneError, MessageChannel

channel = MessageChannel()
message = {"jobs": ["resize", "crop", "rotate", lambda image: image]}
try:
    channel.port1.post_message(message)
except DataCloneError as exc:
    print(exc)
    print("path:", exc.path)
