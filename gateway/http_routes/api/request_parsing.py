"""Reading what a request says: JSON bodies into pydantic models, typed query values, pages.

Every problem becomes InvalidInput naming the field (a body field, or the query parameter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from gateway.errors import InvalidInput
from gateway.http_routes import strict_json

DEFAULT_PER_PAGE: Final = 100
MAX_PER_PAGE: Final = 1000

Model = TypeVar("Model", bound=BaseModel)


async def read_json(request: Request, default: Any = None) -> Any:
    """The decoded JSON body; `default` when the body is empty (InvalidInput if that is None)."""
    raw = await request.body()
    if not raw.strip():
        if default is None:
            raise InvalidInput("body", "a JSON body is required")
        return default
    try:
        return strict_json.loads(raw)
    except ValueError as exc:
        raise InvalidInput("body", f"not valid JSON: {exc}") from None


async def read_model(request: Request, model: type[Model]) -> Model:
    """The body validated as `model`."""
    return parse_model(model, await read_json(request))


def parse_model(model: type[Model], data: Any) -> Model:
    """`data` validated as `model`; the first problem names its field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "body"
        raise InvalidInput(field, problem["msg"]) from None


def query_text(request: Request, name: str) -> str | None:
    """A query parameter; None when absent or empty."""
    return request.query_params.get(name) or None


def query_bool(request: Request, name: str) -> bool | None:
    """A `true`/`false` query parameter; None when absent."""
    value = query_text(request, name)
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidInput(name, f"{value!r} is not a boolean: use true or false")


def query_int(request: Request, name: str, default: int, minimum: int = 0) -> int:
    """An integer query parameter, at least `minimum`."""
    value = query_text(request, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(name, f"{value!r} is not an integer") from None
    if number < minimum:
        raise InvalidInput(name, f"must be at least {minimum}")
    return number


def path_uuid(request: Request, name: str = "id") -> UUID:
    """A UUID path parameter."""
    return _uuid(name, request.path_params[name])


def query_uuid(request: Request, name: str) -> UUID | None:
    """A UUID query parameter; None when absent."""
    value = query_text(request, name)
    return None if value is None else _uuid(name, value)


def _uuid(name: str, value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise InvalidInput(name, f"{value!r} is not a UUID") from None


@dataclass(frozen=True, slots=True)
class Page:
    """Windmill's pagination: `page` counts from 1 (0 also means the first), `per_page` rows."""

    number: int
    per_page: int

    @classmethod
    def of(cls, request: Request, default_per_page: int = DEFAULT_PER_PAGE) -> Page:
        """The page a list request asks for; `per_page` is capped at MAX_PER_PAGE."""
        number = max(query_int(request, "page", 1), 1)
        per_page = min(query_int(request, "per_page", default_per_page, minimum=1), MAX_PER_PAGE)
        return cls(number, per_page)

    @property
    def offset(self) -> int:
        """Rows skipped before this page."""
        return (self.number - 1) * self.per_page

    def of_items(self, items: list[Any]) -> list[Any]:
        """This page of an already filtered list."""
        return items[self.offset : self.offset + self.per_page]
