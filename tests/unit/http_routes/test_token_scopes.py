"""The scope grammar of API tokens: `<domain>:<action>[:<resource>[,<resource>...]]`."""

from __future__ import annotations

import pytest

from gateway.http_routes.api.auth import scope_allows


@pytest.mark.parametrize(
    ("scopes", "domain", "action", "path", "allowed"),
    [
        (None, "variables", "write", "u/a/x", True),
        (["*"], "kafka_triggers", "write", "f/ops/x", True),
        (["jobs:read"], "jobs", "read", None, True),
        (["jobs:read"], "jobs", "write", None, False),
        (["variables:write"], "variables", "read", "f/t/x", True),
        (["variables:read"], "resources", "read", None, False),
        (["kafka_triggers:write:f/ops/*"], "kafka_triggers", "write", "f/ops/orders", True),
        (["kafka_triggers:write:f/ops/*"], "kafka_triggers", "read", "f/ops/orders", True),
        (["kafka_triggers:write:f/ops/*"], "kafka_triggers", "write", "f/opsx/orders", False),
        (["kafka_triggers:write:f/ops/*"], "kafka_triggers", "write", None, False),
        (["kafka_triggers:write:f/ops/*"], "nats_triggers", "write", "f/ops/orders", False),
        (["scripts:read:f/a/x,f/b/*"], "scripts", "read", "f/b/y", True),
        (["scripts:read:f/a/x,f/b/*"], "scripts", "read", "f/a/x", True),
        (["scripts:read:f/a/x,f/b/*"], "scripts", "read", "f/a/y", False),
        (["jobs:run:scripts:f/t/hello"], "jobs", "run", "scripts:f/t/hello", True),
        (["jobs:run:scripts:f/t/hello"], "jobs", "run", "scripts:f/t/other", False),
        (["jobs:run:scripts:f/t/hello"], "jobs", "run", "flows:f/t/hello", False),
        (["jobs:run"], "jobs", "run", "flows:f/t/any", True),
        (["*:read"], "variables", "read", "u/a/x", True),
        (["*:read"], "variables", "write", "u/a/x", False),
        (["variables"], "variables", "read", None, False),
        ([], "variables", "read", None, False),
    ],
)
def test_scope_grammar(
    scopes: list[str] | None, domain: str, action: str, path: str | None, allowed: bool
) -> None:
    assert scope_allows(scopes, domain, action, path) is allowed
