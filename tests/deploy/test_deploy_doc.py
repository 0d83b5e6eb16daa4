"""docs/deploy.md and deploy/ agree with what runs: every setting the server reads has its line
in the environment file, every Caddyfile placeholder in Caddy's, and every command the
topology test's start-up script (deploy/local.py) runs is written in the document, in order,
as is the installation of every file of deploy/ it reads."""

from __future__ import annotations

import re

from deploy.local import DEPLOY, DOC_COMMANDS, read_env_file, read_unit

ROOT = DEPLOY.parent
DOC = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")


def shell_lines() -> list[str]:
    """Every line of the document's ```sh blocks."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", DOC, flags=re.M | re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def settings_read() -> set[str]:
    source = (ROOT / "config" / "settings.py").read_text()
    names = set(re.findall(r'os\.environ\.get\(\s*"(\w+)"', source))
    names |= set(re.findall(r'_env_bool\(\s*"(\w+)"', source))
    names |= {f"PARLEY_RATE_{n.upper()}" for n in re.findall(r'_rate\(\s*"(\w+)"', source)}
    return names


def test_the_environment_file_has_a_line_for_every_setting_and_none_else():
    assert "PARLEY_ORIGIN" in settings_read() and "PARLEY_RATE_STATE" in settings_read()
    assert set(read_env_file(DEPLOY / "parley.env")) == settings_read()


def test_caddys_environment_file_has_every_placeholder_of_the_caddyfile_and_none_else():
    lines = (DEPLOY / "Caddyfile").read_text().splitlines()
    config = "\n".join(line for line in lines if not line.strip().startswith("#"))
    placeholders = set(re.findall(r"\{\$(\w+)", config))
    assert "PARLEY_UPSTREAMS" in placeholders
    assert set(read_env_file(DEPLOY / "caddy.env")) == placeholders


def test_every_command_the_start_up_script_runs_is_in_the_document_in_order():
    lines = shell_lines()
    at = [lines.index(command) if command in lines else None for command in DOC_COMMANDS]
    assert None not in at, [c for c, n in zip(DOC_COMMANDS, at, strict=True) if n is None]
    assert at == sorted(at)


def test_the_document_installs_every_file_the_start_up_script_reads():
    read = [
        "parley.env",
        "caddy.env",
        "Caddyfile",
        "caddy-parley.conf",
        "parley@.service",
        "parley-jobs.service",
        "parley-backup.service",
    ]
    script = (DEPLOY / "local.py").read_text()
    assert all(f'"{name}"' in script for name in read)
    installed = " ".join(shell_lines())
    assert [name for name in read if f"deploy/{name}" not in installed] == []
    enabled = " ".join(line for line in shell_lines() if "systemctl enable" in line)
    for timer in ("parley-jobs.timer", "parley-backup.timer"):
        assert f"deploy/{timer}" in installed and timer in enabled


def test_the_nodes_start_as_every_parley_server_starts_behind_the_proxy_and_as_the_doc_says():
    (command,) = read_unit(DEPLOY / "parley@.service", instance="8001").exec_start
    assert command[0] == "/srv/parley/.venv/bin/python"
    assert f"`python {' '.join(command[1:]).replace('8001', 'PORT')}`" in " ".join(DOC.split())
    assert command[1:] == [
        "-m",
        "web.serve",
        "--proxy-headers",
        "-b",
        "127.0.0.1",
        "-p",
        "8001",
        "config.asgi:application",
    ]
