import dataclasses

from actors import DataCloneError, structured_clone


@dataclasses.dataclass
class Job:
    name: str
    callback: object = None


shared = [1, 2]
message = {"jobs": [Job("a"), Job("b"), Job("c")], "x": shared, "y": shared}
message["self"] = message  # a cycle

clone = structured_clone(message)
print(clone["jobs"] == message["jobs"], clone["jobs"][0] is message["jobs"][0])
print(clone["x"] is clone["y"], clone["x"] is shared, clone["self"] is clone)

message["jobs"].append(lambda: None)
try:
    structured_clone(message)
except DataCloneError as exc:
    print(exc.path, type(exc.value).__name__, isinstance(exc, TypeError))

message["jobs"][3] = Job("d", callback=print)
try:
    structured_clone(message)
except DataCloneError as exc:
    print(exc.path)
