"""What crosses a process boundary: frames, fds and shared memory (never imported by the core)."""
