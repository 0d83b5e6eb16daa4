"""Parley reference client: a command-line device around protocol/."""
