"""An exception class that only a child process imports (tests/_process_actors.py `raises`)."""


class ChildOnlyError(Exception):
    """Raised in a child; the parent never imports this module, so it cannot rebuild it."""
