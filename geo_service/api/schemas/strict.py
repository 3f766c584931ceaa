"""``Exact``, the base of response models that list every member of a body, and
``inline_schema`` for a response's second media type."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Exact(BaseModel):
    """A response object with exactly the documented members (``additionalProperties:
    false``): the schema test then catches a member added or renamed without its model."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` written in place: for a second media type of
    one response, which OpenAPI only takes as a literal schema (no component is made)."""
    schema = model.model_json_schema(mode="serialization")
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)  # type: ignore[no-any-return]
