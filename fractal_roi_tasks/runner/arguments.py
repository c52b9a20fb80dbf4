"""A task's arguments, read from its manifest schemas: listing them
(`task_arguments`), looking one up (`argument_schema`) and checking and
splitting a user's arguments between the parts of a task (`split_arguments`).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.runner.manifest import Part, TaskSpec

logger = logging.getLogger(__name__)

# Arguments Fractal fills in itself, per part of a task.
MANAGED: dict[Part, tuple[str, ...]] = {
    "parallel": ("zarr_url", "init_args"),
    "non_parallel": ("zarr_urls", "zarr_dir"),
}
# Arguments a user may never give: the runner owns them.
FORBIDDEN_ARGS = ("zarr_url", "zarr_urls", "init_args")


@dataclass(frozen=True)
class ArgumentInfo:
    """One argument a user can give to a task (Fractal-managed ones excluded).

    Attributes:
        name: dotted for fields of option groups, e.g. ``"segmentation.method"``.
        type: readable type, e.g. ``"string"``, ``"one of: otsu, li"``.
        default: JSON text of the default, None when the argument is required.
        required: whether it must be given (within its parent, if nested).
        description: the help text from the manifest.
        part: ``"parallel"``, ``"non_parallel"`` or ``"both"`` (compound tasks).
    """

    name: str
    type: str
    default: str | None
    required: bool
    description: str
    part: str


def _resolve(schema: Mapping, root: Mapping) -> Mapping:
    """Follow a local ``$ref`` (``#/$defs/Name``)."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    target: Any = root
    for key in ref.removeprefix("#/").split("/"):
        target = target.get(key, {})
    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}


def _options(schema: Mapping, root: Mapping) -> list[Mapping]:
    """The alternatives of a schema (its ``anyOf``/``oneOf``, or itself), resolved."""
    schema = _resolve(schema, root)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if not alternatives:
        return [schema]
    return [option for alt in alternatives for option in _options(alt, root)]


def _type_text(schema: Mapping, root: Mapping) -> str:
    texts = []
    for option in _options(schema, root):
        if "const" in option:
            text = json.dumps(option["const"])
        elif "enum" in option:
            text = "one of: " + ", ".join(str(value) for value in option["enum"])
        elif option.get("type") == "array":
            text = "list of " + _type_text(option.get("items", {}), root)
        elif option.get("type") == "object" or "properties" in option:
            text = option.get("title", "object")
        else:
            text = str(option.get("type", "any"))
        bounds = [
            f"{sign} {option[key]}"
            for key, sign in (
                ("minimum", ">="), ("exclusiveMinimum", ">"),
                ("maximum", "<="), ("exclusiveMaximum", "<"),
            )
            if key in option
        ]
        if bounds:
            text += f" ({', '.join(bounds)})"
        texts.append(text)
    return " | ".join(dict.fromkeys(texts))


def _object_option(schema: Mapping, root: Mapping) -> Mapping | None:
    for option in _options(schema, root):
        if "properties" in option:
            return option
    return None


def _walk_arguments(
    schema: Mapping, root: Mapping, *, prefix: str, skip: Sequence[str], depth: int
) -> Iterator[tuple[str, Mapping, bool]]:
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        if name in skip:
            continue
        yield prefix + name, prop, name in required
        nested = _object_option(prop, root)
        if nested is not None and depth < 4:
            yield from _walk_arguments(
                nested, root, prefix=f"{prefix}{name}.", skip=(), depth=depth + 1
            )


def task_arguments(task: TaskSpec) -> list[ArgumentInfo]:
    """The arguments a user can give `task`, nested option fields included."""
    found: dict[str, ArgumentInfo] = {}
    for part in task.parts:
        schema = task.schema(part)
        managed = MANAGED[part]
        for name, prop, required in _walk_arguments(
            schema, schema, prefix="", skip=managed, depth=0
        ):
            if name in found:
                found[name] = replace(found[name], part="both")
                continue
            resolved = _resolve(prop, schema)
            found[name] = ArgumentInfo(
                name=name,
                type=_type_text(prop, schema),
                default=json.dumps(resolved["default"]) if "default" in resolved else None,
                required=required,
                description=" ".join(str(resolved.get("description", "")).split()),
                part=part if task.type == "compound" else task.type,
            )
    return list(found.values())


def argument_schema(task: TaskSpec, dotted_name: str) -> list[Mapping]:
    """The schema alternatives of an argument given by a dotted name ([] if unknown)."""
    for part in task.parts:
        schema = task.schema(part)
        current: list[Mapping] = [schema]
        for key in dotted_name.split("."):
            current = [
                option["properties"][key]
                for alternative in current
                for option in _options(alternative, schema)
                if key in option.get("properties", {})
            ]
            if not current:
                break
        if current:
            return [option for alt in current for option in _options(alt, schema)]
    return []


def _check_keys(value: Any, schema: Mapping, root: Mapping, path: str, what: str) -> None:
    """Reject keys a strict schema does not know, naming the known ones."""
    if not isinstance(value, Mapping):
        return
    objects = [option for option in _options(schema, root) if "properties" in option]
    if not objects:
        return
    known = {key for option in objects for key in option["properties"]}
    strict = all(option.get("additionalProperties") is False for option in objects)
    for key, item in value.items():
        if key not in known:
            if strict:
                where = f"in {path!r} " if path else ""
                raise InvalidInputError(
                    f"Unknown argument {key!r} {where}for {what}; its arguments are: "
                    f"{', '.join(sorted(known))}."
                )
            continue
        for option in objects:
            if key in option["properties"]:
                _check_keys(
                    item, option["properties"][key], root, f"{path}.{key}".lstrip("."), what
                )


def split_arguments(task: TaskSpec, args: Mapping | None) -> dict[Part, dict]:
    """Check a user's arguments and split them between the parts of `task`.

    An argument goes to every part whose schema names it. Giving an argument
    that Fractal manages (`zarr_url`, `zarr_urls`, `init_args`), an unknown
    one or none of a required one is an error.
    """
    args = copy.deepcopy(dict(args or {}))
    for key in FORBIDDEN_ARGS:
        if key in args:
            raise InvalidInputError(
                f"Do not give {key!r}: the runner sets it for every image. Give the "
                "image or plate to run on instead."
            )
    split: dict[Part, dict] = {}
    known: set[str] = set()
    for part in task.parts:
        schema = task.schema(part)
        managed = MANAGED[part]
        names = [name for name in schema.get("properties", {}) if name not in managed]
        known.update(names)
        split[part] = {key: value for key, value in args.items() if key in names}
    unknown = [key for key in args if key not in known]
    if unknown:
        raise InvalidInputError(
            f"Unknown argument(s) {', '.join(map(repr, unknown))} for task {task.name!r}; "
            f"its arguments are: {', '.join(sorted(known)) or '(none)'}."
        )
    for part in task.parts:
        schema = task.schema(part)
        managed = MANAGED[part]
        missing = [
            name for name in schema.get("required", ())
            if name not in managed and name not in split[part]
        ]
        if missing:
            raise InvalidInputError(
                f"Task {task.name!r} needs argument(s) {', '.join(map(repr, missing))} "
                f"(e.g. --set {missing[0]}=...)."
            )
        _check_keys(split[part], schema, schema, "", f"task {task.name!r}")
    return split
