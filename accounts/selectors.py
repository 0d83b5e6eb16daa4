"""Reads of the accounts app."""

from __future__ import annotations

from accounts.models import User


def user_get_active(*, username: str) -> User | None:
    """The active account of that username, or None."""
    return User.objects.filter(username=username, is_active=True).first()


def username_taken(*, username: str) -> bool:
    return User.objects.filter(username=username).exists()
