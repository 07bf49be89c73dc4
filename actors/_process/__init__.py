"""Process actors: actors that run in child processes, their ports crossing over the wire."""
