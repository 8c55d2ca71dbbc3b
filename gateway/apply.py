"""`gateway apply -f gateway.yaml`: declare a workspace, its resources, variables, scripts,
flows and triggers in one file; applying it twice changes nothing the second time.

The whole file is validated before anything is written, and written in one transaction.
Errors name the file, the line and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.errors import InvalidInput
from gateway.flow_versions import FlowDraft, save_flow
from gateway.flows import parse_flow
from gateway.http_routes.routes import route_path_key, routes_changed
from gateway.jobs.retry import RetryPolicy
from gateway.scripts import ScriptDraft, save_script
from gateway.secrets.keeper import SecretKeeper, keeper_of
from gateway.secrets.variables import clear_value, write_variable
from gateway.store import Json, Store, Transaction
from gateway.store.trigger_tables import COLUMN_DEFAULTS, SHARED_COLUMNS, TRIGGER_TABLES
from gateway.triggers.filters import FilterError, validate_filters
from gateway.workspaces import Identity, check_workspace_id, ensure_workspace

EXTENSION_LANGUAGES = {".py": "python3", ".sh": "bash"}
TriggerKind = Literal[
    "http", "websocket", "kafka", "nats", "sqs", "gcp", "mqtt", "postgres", "email"
]


class ApplyError(InvalidInput):
    """A declaration file is wrong; the message names file, line and reason."""

    def __init__(self, message: str) -> None:
        super().__init__("", message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OwnerSpec(_Strict):
    username: str = "admin"
    email: str = "admin@localhost"


class ResourceSpec(_Strict):
    path: str
    resource_type: str
    value: Any
    description: str = ""


class VariableSpec(_Strict):
    path: str
    value: str
    is_secret: bool = False
    description: str = ""


class ScriptSpec(_Strict):
    path: str
    file: str | None = None
    content: str | None = None
    language: Literal["python3", "bash"] | None = None
    summary: str = ""
    description: str = ""
    tag: str | None = None
    timeout: int | None = Field(default=None, gt=0)
    dedicated_worker: bool = False
    priority: int | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ScriptSpec:
        if (self.file is None) == (self.content is None):
            raise ValueError("give exactly one of `file` or `content`")
        return self


class FlowSpec(_Strict):
    path: str
    value: dict[str, Any]
    summary: str = ""
    description: str = ""
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    tag: str | None = None
    timeout: int | None = Field(default=None, gt=0)
    dedicated_worker: bool | None = None


class TriggerSpec(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    kind: TriggerKind
    path: str
    script_path: str
    is_flow: bool = False
    mode: Literal["enabled", "disabled", "suspended"] = "enabled"
    retry: dict[str, Any] | None = None
    error_handler_path: str | None = None
    error_handler_args: dict[str, Any] | None = None
    labels: list[str] | None = None

    @model_validator(mode="after")
    def _known_fields(self) -> TriggerSpec:
        table = TRIGGER_TABLES[self.kind]
        unknown = sorted(set(self.model_extra or {}) - set(table.config_columns))
        if unknown:
            raise ValueError(
                f"unknown field(s) for a {self.kind} trigger: {', '.join(unknown)}; "
                f"known: {', '.join(table.config_columns)}"
            )
        if self.retry is not None:
            RetryPolicy.parse(self.retry)
        if self.error_handler_path is not None:
            if self.is_flow:
                raise ValueError("error_handler_path: trigger error handlers only run for scripts")
            if self.error_handler_path.startswith("flow/"):
                raise ValueError("error_handler_path: must name a script, not a flow")
        filters = (self.model_extra or {}).get("filters")
        if filters is not None:
            try:
                validate_filters(filters)
            except FilterError as exc:
                raise ValueError(f"filters: {exc}") from None
        return self


class Declaration(_Strict):
    """The whole file."""

    workspace: str
    owner: OwnerSpec = OwnerSpec()
    resources: list[ResourceSpec] = []
    variables: list[VariableSpec] = []
    scripts: list[ScriptSpec] = []
    flows: list[FlowSpec] = []
    triggers: list[TriggerSpec] = []


@dataclass(frozen=True, slots=True)
class Change:
    """One line of what `apply` did."""

    action: Literal["created", "updated", "unchanged"]
    kind: str
    path: str

    def __str__(self) -> str:
        return f"{self.action:9} {self.kind:10} {self.path}"


def load_declaration(path: Path) -> tuple[Declaration, dict[str, str]]:
    """Parse and validate the file; also read the script files it names."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ApplyError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ApplyError(f"{path}:{line}: invalid YAML: {exc.problem}") from None
    if not isinstance(data, dict):
        raise ApplyError(f"{path}:1: the file must be a mapping with at least `workspace:`")
    try:
        declaration = Declaration.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        line = _line_of(root, error["loc"])
        where = ".".join(str(part) for part in error["loc"])
        raise ApplyError(f"{path}:{line}: {where}: {error['msg']}") from None
    try:
        check_workspace_id(declaration.workspace)
    except InvalidInput as exc:
        raise ApplyError(f"{path}:{_line_of(root, ('workspace',))}: {exc}") from None
    for index, flow in enumerate(declaration.flows):
        try:
            parse_flow(flow.value)
        except InvalidInput as exc:
            line = _line_of(root, ("flows", index, "value", *_field_loc(exc.field)))
            raise ApplyError(f"{path}:{line}: flows.{index}.value.{exc}") from None
    sources: dict[str, str] = {}
    for index, script in enumerate(declaration.scripts):
        if script.file is None:
            continue
        source = path.parent / script.file
        try:
            sources[script.path] = source.read_text()
        except OSError as exc:
            line = _line_of(root, ("scripts", index, "file"))
            raise ApplyError(
                f"{path}:{line}: cannot read script file {source}: {exc.strerror}"
            ) from None
    return declaration, sources


def _field_loc(field: str) -> tuple[int | str, ...]:
    """The parts of a field path such as `modules[2].value.type`."""
    parts: list[int | str] = []
    for name in field.replace("[", ".").replace("]", "").split("."):
        if name:
            parts.append(int(name) if name.isdigit() else name)
    return tuple(parts)


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The line of the deepest node of `loc` found in the YAML tree."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                break
            node = match
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


async def apply_declaration(
    store: Store, declaration: Declaration, sources: Mapping[str, str]
) -> list[Change]:
    """Write everything the declaration says, in one transaction."""
    owner = Identity(declaration.owner.username, declaration.owner.email)
    ws = declaration.workspace
    changes: list[Change] = []
    async with store.transaction() as tx:
        created = await ensure_workspace(tx, ws, owner)
        changes.append(Change("created" if created else "unchanged", "workspace", ws))
        for resource in declaration.resources:
            changes.append(await _apply_resource(tx, ws, resource, owner))
        for variable in declaration.variables:
            changes.append(await _apply_variable(tx, keeper_of(store), ws, variable))
        for script in declaration.scripts:
            content = script.content if script.content is not None else sources[script.path]
            language = script.language or _language_of(script)
            draft = ScriptDraft(
                path=script.path,
                content=content,
                language=language,
                summary=script.summary,
                description=script.description,
                tag=script.tag,
                timeout=script.timeout,
                dedicated_worker=script.dedicated_worker,
                priority=script.priority,
            )
            saved, action = await save_script(tx, ws, draft, owner.username)
            changes.append(Change(action, "script", saved.path))
        for flow in declaration.flows:
            changes.append(await _apply_flow(tx, ws, flow, owner))
        for trigger in declaration.triggers:
            changes.append(await _apply_trigger(tx, ws, trigger, owner))
    return changes


async def _apply_flow(tx: Transaction, ws: str, flow: FlowSpec, owner: Identity) -> Change:
    draft = FlowDraft(
        path=flow.path,
        value=flow.value,
        summary=flow.summary,
        description=flow.description,
        schema=flow.schema_,
        tag=flow.tag,
        timeout=flow.timeout,
        dedicated_worker=flow.dedicated_worker,
    )
    _, action = await save_flow(tx, ws, draft, owner.username)
    return Change(action, "flow", flow.path)


def _language_of(script: ScriptSpec) -> str:
    suffix = Path(script.file or "").suffix
    if suffix not in EXTENSION_LANGUAGES:
        raise ApplyError(
            f"script {script.path}: cannot tell the language of {script.file!r}; set `language:`"
        )
    return EXTENSION_LANGUAGES[suffix]


async def _apply_resource(
    tx: Transaction, ws: str, resource: ResourceSpec, owner: Identity
) -> Change:
    existing = await tx.fetch_one("get_resource", workspace_id=ws, path=resource.path)
    wanted = (resource.value, resource.description, resource.resource_type)
    if (
        existing
        and (existing["value"], existing["description"], existing["resource_type"]) == wanted
    ):
        return Change("unchanged", "resource", resource.path)
    await tx.execute(
        "upsert_resource",
        workspace_id=ws,
        path=resource.path,
        value=Json(resource.value),
        description=resource.description,
        resource_type=resource.resource_type,
        created_by=owner.username,
    )
    return Change("updated" if existing else "created", "resource", resource.path)


async def _apply_variable(
    tx: Transaction, secrets: SecretKeeper, ws: str, variable: VariableSpec
) -> Change:
    existing = await tx.fetch_one("get_variable", workspace_id=ws, path=variable.path)
    wanted = (variable.value, variable.is_secret, variable.description)
    if existing:
        # A secret is compared by its clear value: sealing the same value twice differs.
        value = await clear_value(tx, secrets, existing)
        if (value, bool(existing["is_secret"]), existing["description"]) == wanted:
            return Change("unchanged", "variable", variable.path)
    await write_variable(
        tx,
        secrets,
        ws,
        variable.path,
        value=variable.value,
        is_secret=variable.is_secret,
        description=variable.description,
    )
    return Change("updated" if existing else "created", "variable", variable.path)


async def _apply_trigger(tx: Transaction, ws: str, trigger: TriggerSpec, owner: Identity) -> Change:
    table = TRIGGER_TABLES[trigger.kind]
    shared = trigger.model_dump(include=set(SHARED_COLUMNS))
    values: dict[str, Any] = {
        **{c: COLUMN_DEFAULTS.get(c) for c in table.writable_columns},
        **shared,
        **(trigger.model_extra or {}),
        "workspace_id": ws,
        "edited_by": owner.username,
        "email": owner.email,
        "permissioned_as": owner.permissioned_as,
    }
    if trigger.kind == "http" and values.get("route_path"):
        workspaced = ws if values.get("workspaced_route") else None
        values["route_path_key"] = route_path_key(str(values["route_path"]), workspaced)
    values.pop("edited_at", None)
    label = f"{trigger.kind}_trigger"
    existing = await tx.fetch_one(f"get_{trigger.kind}_trigger", workspace_id=ws, path=trigger.path)
    if existing and all(existing.get(k) == v for k, v in values.items()):
        return Change("unchanged", label, trigger.path)
    await tx.execute(f"upsert_{trigger.kind}_trigger", **values)
    if trigger.kind == "http":
        await routes_changed(tx)
    return Change("updated" if existing else "created", label, trigger.path)
