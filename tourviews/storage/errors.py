"""What can go wrong with the data directory, as the CLI and the HTTP layer report it."""


class StorageError(Exception):
    """The data directory cannot be used; the message says why in one line."""


class StorageBusy(StorageError):
    """Another process holds the DuckDB file (DuckDB allows one writing process)."""


class SecretError(StorageError):
    """The instance secret is missing, unreadable or malformed."""


class InvalidValue(ValueError):
    """A value given by a user breaks a rule; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Conflict(InvalidValue):
    """A value that clashes with what is stored (409); ``field`` names it."""
