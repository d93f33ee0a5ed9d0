"""Connector settings and credentials as pydantic models, checked the way the API
answers bad input.

A driver describes its configuration once, as two models (settings, and credentials
whose secrets are ``SecretStr``), and derives from them what the connector service
needs today (``defaults``, ``required_credentials``, ``check``). The error list names
fields the way the API does (``settings.service_id``) and never repeats a value that
was given: it may be a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from interlock.domain.errors import InvalidInput

Model = TypeVar("Model", bound=BaseModel)




def parse(model: type[Model], values: Mapping[str, Any], part: str, what: str) -> Model:
    """``values`` as ``model``, or InvalidInput naming each bad field under ``part``
    ("settings" or "credentials"). Settings that are None count as not given."""
    given = {name: value for name, value in values.items() if value is not None}
    try:
        return model.model_validate(given)
    except ValidationError as error:
        raise InvalidInput(f"the {what} connector's configuration is not usable",
                           errors=errors_of(error, part)) from None



def errors_of(error: ValidationError, part: str) -> list[dict[str, str]]:
    found = []
    for item in error.errors(include_input=False, include_url=False):
        where = ".".join(str(piece) for piece in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "required"
        found.append({"field": f"{part}.{where}" if where else part, "message": message})
    return found
