"""The ``genre`` command line: one thin Click command per job, logic lives in the libraries."""

from cli.main import main

__all__ = ["main"]
