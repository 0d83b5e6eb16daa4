"""Settings come from the environment, with embedded defaults that need no service."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], 'layer': s.CHANNEL_LAYERS['default'], "
    "'rp_id': s.PARLEY_RP_ID, 'origin': s.PARLEY_ORIGIN, 'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS}))"
)


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "DEBUG",
            "SECRET_KEY",
            "PARLEY_ORIGIN",
            "PARLEY_DEPLOYMENT_ORIGINS",
            "ALLOWED_HOSTS",
        }
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + PROBE],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        check=False,
    )


def test_nothing_set_means_sqlite_and_the_in_process_layer():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["layer"]["BACKEND"] == "web.channel_layer.LocalChannelLayer"
    assert (loaded["rp_id"], loaded["origin"]) == ("localhost", "http://localhost:8000")


def test_scale_out_variables_switch_to_postgresql_and_the_redis_pubsub_layer():
    result = load_settings(
        DATABASE_URL="postgres://parley:pw@127.0.0.1:5433/parley",
        REDIS_URL="redis://127.0.0.1:6390/0",
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["layer"]["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    # redis-py's default 5 s socket timeout would close idle device sockets (channels_redis#422).
    assert loaded["layer"]["CONFIG"]["hosts"] == [
        {"address": "redis://127.0.0.1:6390/0", "socket_timeout": None}
    ]


def test_origin_sets_the_webauthn_relying_party():
    loaded = json.loads(
        load_settings(
            PARLEY_ORIGIN="https://chat.example.org", ALLOWED_HOSTS="chat.example.org"
        ).stdout
    )
    assert (loaded["rp_id"], loaded["origin"], loaded["hosts"]) == (
        "chat.example.org",
        "https://chat.example.org",
        ["chat.example.org"],
    )


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"DEBUG": "0"}, "SECRET_KEY must be set"),
        ({"PARLEY_ORIGIN": "localhost:8000"}, "PARLEY_ORIGIN must be"),
        ({"PARLEY_DEPLOYMENT_ORIGINS": "localhost:8001"}, "PARLEY_DEPLOYMENT_ORIGINS must list"),
    ],
)
def test_unsafe_or_malformed_configuration_refuses_to_start(env, reason):
    result = load_settings(**env)
    assert result.returncode != 0
    assert reason in result.stderr


def test_production_settings_pass_djangos_deployment_checks():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DEBUG="0",
        SECRET_KEY="x" * 20 + "-production-secret-" + "y" * 30,
        PARLEY_ORIGIN="https://chat.example.org",
        ALLOWED_HOSTS="chat.example.org",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0)",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == ["True"] * 5


def test_a_postgresql_host_that_never_answers_fails_the_connect_instead_of_hanging():
    # A listener that takes the TCP connection and never speaks, like a stuck database host.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        env = {
            k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}
        }
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_URL=f"postgres://parley@127.0.0.1:{port}/parley",
        )
        probe = (
            "import django; django.setup(); from django.db import connection\n"
            "try:\n    connection.ensure_connection()\n"
            "except Exception as error:\n    print(type(error).__name__)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,  # without a connect timeout libpq would wait for ever
        )
    assert result.stdout.strip() == "OperationalError", result.stderr
