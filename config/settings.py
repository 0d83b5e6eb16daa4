"""Parley settings, read from the environment in this one place.

With nothing set, Parley runs embedded: a SQLite file and the in-process channel layer.
`DATABASE_URL` (PostgreSQL) and `REDIS_URL` (channels_redis pub/sub layer) switch to the
scale-out setup. Every variable is listed with its default in the README.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "parley-insecure-development-key-do-not-use-in-production"

# The public origin of the app; WebAuthn binds passkeys to its host (the rp id) and checks
# assertions against the full origin, port included.
PARLEY_ORIGIN = os.environ.get("PARLEY_ORIGIN", "http://localhost:8000").rstrip("/")
_origin = urlsplit(PARLEY_ORIGIN)
if _origin.scheme not in {"http", "https"} or not _origin.hostname:
    raise ImproperlyConfigured(
        f"PARLEY_ORIGIN must be http(s)://host[:port], got {PARLEY_ORIGIN!r}"
    )
PARLEY_RP_ID = _origin.hostname
PARLEY_RP_NAME = "Parley"


def _origins(value: str) -> list[str]:
    origins = [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path:
            raise ImproperlyConfigured(
                f"PARLEY_DEPLOYMENT_ORIGINS must list http(s)://host[:port], got {origin!r}"
            )
    return origins if PARLEY_ORIGIN in origins else [PARLEY_ORIGIN, *origins]


# Every origin this deployment serves (each node of `make cluster` is one), the same list on
# every node. Passkeys and device storage belong to one origin, so the approval page points a
# browser with no account here at the others (docs/operations.md).
PARLEY_DEPLOYMENT_ORIGINS = _origins(os.environ.get("PARLEY_DEPLOYMENT_ORIGINS", ""))

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [PARLEY_ORIGIN]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "web",
    "accounts",
    "devices",
    "messaging",
]

MIDDLEWARE = [
    "web.probes.ProbeMiddleware",  # /healthz, /readyz: before the HTTPS redirect and host check
    "web.api.ApiAnswerMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "web.csp.ContentSecurityPolicyMiddleware",
    "web.static_cache.VersionedScriptCacheMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "web.importmap.importmap",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=None,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that does not answer fails a connect within 5 s (libpq waits for ever),
    # so a request, a socket's connect or /readyz's check gives up instead of hanging.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; a short busy wait instead of "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }
    # Tests use a file, not shared-cache memory, so concurrent requests wait on the lock
    # as they do in production instead of failing with "table is locked".
    DATABASES["default"]["TEST"] = {
        "NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")
    }
    (BASE_DIR / "var").mkdir(exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # The pub/sub layer: the core layer was measured losing messages (FIELD-NOTES); either
    # way the database queue is the truth and the layer only a doorbell.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]},
        }
    }
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # One process: Channels' InMemoryChannelLayer contract at a cost per message that stays flat
    # as sockets connect (that layer walks every channel on each receive; docs/architecture.md).
    # A membership lasts a year, not Channels' default day: a desktop's socket may stay open
    # for weeks, and one that dropped out of its device group would miss `device.revoked`.
    # (Every consumer discards its groups when it closes; a crash takes the process's layer.)
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "web.channel_layer.LocalChannelLayer",
            "CONFIG": {"group_expiry": 365 * 86400},
        }
    }

_https = _origin.scheme == "https"
# Behind a TLS-terminating load balancer, trust its X-Forwarded-Proto (docs/operations.md).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _https else None
SECURE_SSL_REDIRECT = _https and not DEBUG
SECURE_HSTS_SECONDS = (
    int(os.environ.get("SECURE_HSTS_SECONDS", "31536000")) if _https and not DEBUG else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/signin"

# Linking and device lifetime rules (docs/architecture.md).
PARLEY_MAX_COMPANIONS = 4
PARLEY_LINK_TTL_SECONDS = int(os.environ.get("PARLEY_LINK_TTL_SECONDS", "120"))
PARLEY_CHALLENGE_TTL_SECONDS = 300
PARLEY_PRIMARY_INACTIVITY_DAYS = int(os.environ.get("PARLEY_PRIMARY_INACTIVITY_DAYS", "14"))
# For this long after a companion is linked, the account's older devices may remove it too.
PARLEY_VETO_WINDOW_SECONDS = int(os.environ.get("PARLEY_VETO_WINDOW_SECONDS", str(24 * 3600)))

# Envelope queue limits (docs/protocol.md, wire protocol).
PARLEY_QUEUE_LIMIT = int(os.environ.get("PARLEY_QUEUE_LIMIT", "50000"))
PARLEY_SEND_RATE = float(os.environ.get("PARLEY_SEND_RATE", "200"))  # sends per second per device
PARLEY_SEND_BURST = int(os.environ.get("PARLEY_SEND_BURST", "2000"))
# A connected device's unacknowledged (or never pushed) envelopes are re-sent after this long.
PARLEY_REPUSH_SECONDS = float(os.environ.get("PARLEY_REPUSH_SECONDS", "10"))
# On SQLite, the queue's reads and group commits run on the event loop's own connection
# (messaging/queue_db.py); 0 sends them through Django's database thread like other queries.
PARLEY_INLINE_SQLITE = os.environ.get("PARLEY_INLINE_SQLITE", "1") == "1"
# One-time prekeys (docs/protocol.md section 3.2): an account other than the device's own
# gets at most PARLEY_PREKEY_SHARE of a device's one-time prekeys per window; later bundles
# carry the signed prekey only. A device left with at most PARLEY_PREKEYS_LOW is told to refill.
PARLEY_PREKEY_SHARE = int(os.environ.get("PARLEY_PREKEY_SHARE", "1"))
PARLEY_PREKEY_SHARE_SECONDS = int(os.environ.get("PARLEY_PREKEY_SHARE_SECONDS", "86400"))
PARLEY_PREKEYS_LOW = int(os.environ.get("PARLEY_PREKEYS_LOW", "5"))
# One-time KEM prekeys (docs/protocol.md 27.6), handed out under the same share (counted apart):
# at most PARLEY_KEM_PREKEYS_PER_UPLOAD a request (1,184-byte keys: a 64 KiB body holds about
# 35) and PARLEY_KEM_PREKEYS_MAX stored per device.
PARLEY_KEM_PREKEYS_PER_UPLOAD = int(os.environ.get("PARLEY_KEM_PREKEYS_PER_UPLOAD", "25"))
PARLEY_KEM_PREKEYS_MAX = int(os.environ.get("PARLEY_KEM_PREKEYS_MAX", "200"))

# Each process holding sockets beats this often; one silent for three beats counts as dead:
# its sockets are no longer "active now" and their rows are reaped.
PARLEY_HEARTBEAT_SECONDS = float(os.environ.get("PARLEY_HEARTBEAT_SECONDS", "10"))
# On SIGTERM a node drains for at most this long before it stops (docs/operations.md): its
# sockets commit what they read and are told to reconnect elsewhere, requests in flight finish.
PARLEY_DRAIN_SECONDS = float(os.environ.get("PARLEY_DRAIN_SECONDS", "10"))
PARLEY_HISTORY_MAX_BYTES = int(os.environ.get("PARLEY_HISTORY_MAX_BYTES", str(64 * 1024 * 1024)))
# End-to-end-encrypted attachments (docs/protocol.md 19.5): the largest file (plaintext bytes),
# the ciphertext bytes of an account's live attachments, the upload's piece size, and how long
# an attachment is kept for devices that have not fetched it.
PARLEY_ATTACHMENT_MAX_BYTES = int(os.environ.get("PARLEY_ATTACHMENT_MAX_BYTES", "25000000"))
PARLEY_ATTACHMENT_QUOTA_BYTES = int(os.environ.get("PARLEY_ATTACHMENT_QUOTA_BYTES", "1000000000"))
PARLEY_ATTACHMENT_PIECE_BYTES = int(os.environ.get("PARLEY_ATTACHMENT_PIECE_BYTES", "1048576"))
PARLEY_ATTACHMENT_RETENTION_DAYS = int(os.environ.get("PARLEY_ATTACHMENT_RETENTION_DAYS", "30"))
# Where their pieces are stored, shared by every node (the checkout is read-only in deploy/).
PARLEY_ATTACHMENT_DIR = os.environ.get(
    "PARLEY_ATTACHMENT_DIR", str(BASE_DIR / "var" / "attachments")
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # A piece written again after a failed attempt replaces what that attempt left.
    "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": PARLEY_ATTACHMENT_DIR, "allow_overwrite": True},
    },
}
# What Django buffers of any body: the JSON API's limit (web.validation.MAX_BODY_BYTES).
# History bundles are larger; their view reads them as a stream with their own limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024


def _rate(name: str, default: str) -> tuple[int, int]:
    """A limit written as "requests/seconds", e.g. PARLEY_RATE_SIGN_IN=20/60."""
    count, seconds = os.environ.get(f"PARLEY_RATE_{name.upper()}", default).split("/")
    return int(count), int(seconds)


# Per client IP address (sign_in, signup, link), per requesting device and account (bundles),
# or per writing device (state: POST /api/state; groups: POST /api/groups/<id>/entries;
# attachments: POST /api/attachments).
PARLEY_RATE_LIMITS = {
    "sign_in": _rate("sign_in", "30/60"),
    "signup": _rate("signup", "10/60"),
    "link": _rate("link", "20/60"),
    "bundles": _rate("bundles", "60/60"),
    "state": _rate("state", "300/60"),
    "groups": _rate("groups", "60/60"),
    "attachments": _rate("attachments", "120/60"),
}
CSRF_FAILURE_VIEW = "web.views.csrf_failure"
