"""Reading a trigger's or a resource's configuration into its model, errors named by field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.errors import InvalidInput

Config = TypeVar("Config", bound=BaseModel)


def parse_config(model: type[Config], value: Any, prefix: str) -> Config:
    """`value` as a `model`; InvalidInput naming the first bad field under `prefix`."""
    try:
        return model.model_validate(value)
    except InvalidInput as exc:
        raise InvalidInput(".".join(filter(None, (prefix, exc.field))), exc.reason) from None
    except ValidationError as exc:
        problem = exc.errors()[0]
        location = ".".join(str(part) for part in (prefix, *problem["loc"]) if part != "")
        reason = problem["msg"].removeprefix("Value error, ")
        raise InvalidInput(location or "body", reason) from None
