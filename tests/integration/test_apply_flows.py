"""`gateway apply` with a `flows:` section: saved as flow versions, idempotent, and a bad module
reported with the file and the line of the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.apply import ApplyError, apply_declaration, load_declaration
from gateway.store import Store, fetch_all

DECLARATION = """\
workspace: flows
owner: {username: ops, email: ops@example.com}
flows:
  - path: f/ops/double
    summary: doubles n
    schema:
      type: object
      properties: {n: {type: integer}}
    value:
      modules:
        - id: a
          value:
            type: rawscript
            language: python3
            content: |
              def main(n: int):
                  return n * 2
            input_transforms:
              n: {type: javascript, expr: flow_input.n}
"""


def declare(tmp_path: Path, text: str) -> Path:
    """The declaration `text` written to a file."""
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


async def test_a_declared_flow_is_saved_once_and_then_unchanged(
    store: Store, tmp_path: Path
) -> None:
    declaration, sources = load_declaration(declare(tmp_path, DECLARATION))

    first = await apply_declaration(store, declaration, sources)
    second = await apply_declaration(store, declaration, sources)

    assert [(c.action, c.kind, c.path) for c in first if c.kind == "flow"] == [
        ("created", "flow", "f/ops/double")
    ]
    assert [(c.action, c.kind) for c in second if c.kind == "flow"] == [("unchanged", "flow")]
    versions = await fetch_all(
        store, "list_flow_versions", workspace_id="flows", path="f/ops/double"
    )
    assert len(versions) == 1
    [flow] = await fetch_all(
        store,
        "api_list_flows",
        workspace_id="flows",
        show_archived=False,
        path_start=None,
        path_exact=None,
        is_admin=True,
        user_prefix="u/ops/",
        limit=10,
        offset=0,
    )
    assert (flow["summary"], flow["edited_by"]) == ("doubles n", "ops")
    assert flow["schema"] == {"type": "object", "properties": {"n": {"type": "integer"}}}


async def test_a_changed_flow_gets_a_new_version(store: Store, tmp_path: Path) -> None:
    await apply_declaration(store, *load_declaration(declare(tmp_path, DECLARATION)))
    changed = DECLARATION.replace("return n * 2", "return n * 3")

    changes = await apply_declaration(store, *load_declaration(declare(tmp_path, changed)))

    assert [(c.action, c.kind) for c in changes if c.kind == "flow"] == [("updated", "flow")]
    versions = await fetch_all(
        store, "list_flow_versions", workspace_id="flows", path="f/ops/double"
    )
    assert len(versions) == 2


def test_an_unsupported_module_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = DECLARATION.replace("type: rawscript", "type: graphql")

    with pytest.raises(ApplyError) as refused:
        load_declaration(declare(tmp_path, bad))

    line = bad.splitlines().index("            type: graphql") + 1
    assert str(refused.value).startswith(f"{tmp_path / 'gateway.yaml'}:{line}: ")
    assert "flows.0.value.modules[0].value.type" in str(refused.value)
    assert "graphql" in str(refused.value)


def test_a_flow_without_value_is_reported_with_its_line(tmp_path: Path) -> None:
    missing = "workspace: flows\nflows:\n  - path: f/ops/empty\n    summary: nothing\n"

    with pytest.raises(ApplyError) as refused:
        load_declaration(declare(tmp_path, missing))

    assert str(refused.value).startswith(f"{tmp_path / 'gateway.yaml'}:3: flows.0.value")
