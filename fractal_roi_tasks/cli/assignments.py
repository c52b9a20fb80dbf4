"""A task's arguments as the command takes them: a JSON object (``--args``), then ``--set key=value``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from fractal_roi_tasks.errors import InvalidInputError


def load_args(text: str | None) -> dict:
    if text is None:
        return {}
    source = "--args"
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"--args file {str(path)!r} does not exist.") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidInputError(f"{source} is not valid JSON ({err}): {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{source} must be a JSON object, got {text[:80]!r}.")
    return value


_JSON_TYPES = {
    str: "string", bool: "boolean", int: "integer", float: "number",
    type(None): "null", list: "array", dict: "object",
}


def _fits(value: object, options: Sequence[dict]) -> bool:
    """Whether a parsed JSON value matches one of the schema options' types."""
    kind = _JSON_TYPES.get(type(value))
    for option in options:
        if "enum" in option or "const" in option:
            if value in option.get("enum", [option.get("const")]):
                return True
            continue
        allowed = option.get("type")
        if allowed is None or allowed == kind or (allowed == "number" and kind == "integer"):
            return True
    return False


def parse_assignments(
    items: Sequence[str], base: dict | None = None, *, task=None
) -> dict:
    """Apply ``key=value`` items onto a copy of `base`.

    Values are read as JSON when they parse, else kept as text. With a `task`,
    a value whose JSON reading does not fit the argument's type while the text
    does (``level=0`` for a string argument) stays text. Dotted keys set
    nested fields.
    """
    from fractal_roi_tasks.runner import argument_schema

    result = json.loads(json.dumps(base or {}))
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise InvalidInputError(
                f"--set expects key=value (e.g. label_name=nuclei), got {item!r}."
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if task is not None and not isinstance(value, str):
            options = argument_schema(task, key)
            if options and not _fits(value, options) and _fits(raw, options):
                value = raw
        target = result
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            nested = target.setdefault(part, {})
            if nested is None:
                nested = target[part] = {}
            if not isinstance(nested, dict):
                raise InvalidInputError(
                    f"--set {item!r}: {'.'.join(parts[: depth + 1])!r} is already "
                    f"{json.dumps(nested)}, not an object."
                )
            target = nested
        target[parts[-1]] = value
    return result
