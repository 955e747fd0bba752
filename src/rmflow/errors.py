"""The one exception type for user mistakes.

The CLI turns an ``RmflowError`` into a single line on stderr and exit code 2; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class RmflowError(Exception):
    """A mistake in the user's input: a file, row, config key or path that is wrong."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None, field: str | None = None):
        self.file, self.row, self.field = file, row, field
        where = []
        if file is not None:
            where.append(str(file) if row is None else f"{file}:{row}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__((": ".join(where) + ": " if where else "") + message)
