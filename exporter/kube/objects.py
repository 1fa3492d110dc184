"""The API server's objects as JSON, read defensively. Pure.

Any field of an object may be missing, null or of another type than the API documents (an older
server, a hand-written object, a CRD without a schema). Discovery and the container reader step
into nested fields through `as_dict` and `as_list`, so that such a field reads as absent instead
of raising and costing the whole object.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def as_dict(value: object) -> JSON:
    """`value` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    """`value` when it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []
