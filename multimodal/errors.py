"""Errors a user can cause. Their messages are shown to the user as they are."""


class UserInputError(ValueError):
    """Bad input from a person or program: caught at the edge and shown with its message."""


class QueryError(UserInputError):
    """A search request that cannot be run (no query part, unreadable image, unknown corpus...)."""


class IngestError(UserInputError):
    """One source that cannot become an item; the others in the same run are unaffected."""
