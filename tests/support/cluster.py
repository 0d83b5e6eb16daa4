"""The tests' scale-out setup: PostgreSQL, Redis and several Daphne nodes sharing them, on
free ports, with throwaway data and the fast test settings of tests/support/server.py
(`make cluster` is the production-shaped one, scripts/cluster.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support.postgres import PostgresServer, start_postgres
from tests.support.redis import RedisServer, start_redis
from tests.support.server import LiveServer, start_server


@dataclass
class Cluster:
    postgres: PostgresServer
    redis: RedisServer
    nodes: list[LiveServer]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.redis.stop()
        self.postgres.stop()


def start_cluster(
    workdir: Path, *, nodes: int = 2, durable: bool = True, extra_env: dict[str, str] | None = None
) -> Cluster:
    postgres = start_postgres(workdir / "postgres", durable=durable)
    redis = start_redis(_mkdir(workdir / "redis"))
    servers = []
    for n in range(nodes):
        servers.append(
            start_server(
                _mkdir(workdir / f"node{n}"),
                redis_url=redis.url,
                database_url=postgres.url,
                extra_env=extra_env,
            )
        )
    return Cluster(postgres=postgres, redis=redis, nodes=servers)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
