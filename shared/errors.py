"""Errors meant for the person at the terminal.

Library code raises :class:`GenreError` with a message that reads as one complete line
("what is wrong, and what to do about it"); the CLI prints it and exits non-zero. Anything
else that escapes is a bug.
"""


class GenreError(Exception):
    """A problem with the user's input, files or settings, explained in one line."""
