"""The misbehaving server for Python clients (DESIGN §7): a transport wrapper that rewrites
chosen answers before the client sees them, while the real server keeps its honest state.

    server = RewritingTransport(HttpTransport(url))
    server.rewrite("GET", r"/api/accounts/[^/]+/device-list", lambda body: {...})

A rule is (method, full-match path pattern, function of the parsed JSON body -> new body).
Rules apply to 200 answers only, in the order added; `log` records every exchange.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from client.api import Transport

Rewrite = Callable[[Any], Any]


@dataclass
class Rule:
    method: str
    pattern: re.Pattern[str]
    rewrite: Rewrite
    hits: int = 0


@dataclass
class RewritingTransport:
    inner: Transport
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)

    def rewrite(self, method: str, path_pattern: str, rewrite: Rewrite) -> Rule:
        rule = Rule(method.upper(), re.compile(path_pattern), rewrite)
        self.rules.append(rule)
        return rule

    def get(self, path: str) -> tuple[int, Any]:
        return self._answer("GET", path, self.inner.get(path))

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self._answer("POST", path, self.inner.post(path, body))

    def _answer(self, method: str, path: str, result: tuple[int, Any]) -> tuple[int, Any]:
        status, body = result
        self.log.append((method, path, status))
        if status == 200:
            for rule in self.rules:
                if rule.method == method and rule.pattern.fullmatch(path):
                    rule.hits += 1
                    body = rule.rewrite(copy.deepcopy(body))
        return status, body

    def __getattr__(self, name: str) -> Any:
        # origin, cookies... of the wrapped transport
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
