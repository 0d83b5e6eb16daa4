"""Accounts and their passkeys. Parley has no passwords: a passkey (WebAuthn, user
verification required) is how a person proves it is them on the primary."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.]{2,31}$"
MAX_DISPLAY_NAME = 64


class UserManager(BaseUserManager["User"]):
    def create_user(self, username: str, display_name: str) -> User:
        user = self.model(username=username, display_name=display_name)
        user.set_unusable_password()
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    """An account. Its id for the protocol (`account_id`) is the username, which never changes."""

    username = models.CharField(
        max_length=32,
        unique=True,
        validators=[RegexValidator(USERNAME_PATTERN)],
        help_text="3–32 characters: lowercase letters, digits, '_' and '.'",
    )
    display_name = models.CharField(max_length=MAX_DISPLAY_NAME)
    created_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=True)

    USERNAME_FIELD = "username"
    objects = UserManager()

    def __str__(self) -> str:
        return self.username


class Passkey(models.Model):
    """A WebAuthn credential registered by the account's primary."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="passkeys")
    credential_id = models.BinaryField(max_length=1023, unique=True)
    public_key = models.BinaryField(max_length=1023)
    sign_count = models.PositiveBigIntegerField(default=0)
    transports = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True)


class Challenge(models.Model):
    """A single-use, short-lived server challenge (WebAuthn ceremonies and key sign-ins), or
    the grant a verified passkey earns to re-register its account once (`reregister`)."""

    class Purpose(models.TextChoices):
        REGISTER = "register"
        SIGN_IN = "sign_in"
        APPROVE_LINK = "approve_link"
        DEVICE_SIGN_IN = "device_sign_in"
        REREGISTER = "reregister"

    token = models.CharField(max_length=43, unique=True)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    challenge = models.BinaryField(max_length=64)
    user = models.ForeignKey(User, null=True, on_delete=models.CASCADE)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True)
