"""The node's server: Daphne, started as `python -m web.serve` with Daphne's own arguments
(`python -m web.serve -b 127.0.0.1 -p 8000 config.asgi:application`).

Every way Parley is served goes through here (`make run`, the tests' servers, the systemd
units of deploy/), so that what a node does when it is stopped is the same everywhere.
"""

from __future__ import annotations

from daphne.cli import CommandLineInterface
from daphne.server import Server


class NodeServer(Server):
    """Daphne's server; the node's own shutdown goes here."""


class NodeCommandLine(CommandLineInterface):
    server_class = NodeServer


if __name__ == "__main__":
    NodeCommandLine.entrypoint()
