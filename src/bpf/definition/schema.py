"""The JSON Schema of process definitions, and its errors told the way a YAML author reads them.

The schema ships in the package (``process.schema.json``) so editors can use it too. jsonschema's
own messages speak of instances and validators; `schema_problems` translates the common ones
into "unknown key `nmae` in stage, did you mean `name`?" located at the key. Sub-schemas carry
``x-message`` (one message for any failure there), ``x-messages`` (a template per validator,
with ``{subject}`` and ``{value}``), ``x-at`` (the key to point at) and ``x-kind`` annotations,
which JSON Schema ignores and this module reads.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import resources
from typing import Any

from bpf._errors import Problem
from bpf.definition._yaml_source import Locator, Path
from bpf.definition.conditions import OPERATORS

_COMBINATORS = ("all", "any", "not")

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping (key: value)",
    "null": "null",
}


@functools.cache
def process_schema() -> Mapping[str, Any]:
    """The JSON Schema of a process file, as shipped in ``bpf/definition/process.schema.json``."""
    text = resources.files("bpf.definition").joinpath("process.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@functools.cache
def _validators() -> tuple[Any, Any]:
    # Compiled once: building a validator resolves every $ref, which costs more than a load.
    # jsonschema is imported here, not at the top: importing bpf need not pay for it.
    import jsonschema

    schema = process_schema()
    cls = jsonschema.validators.validator_for(schema)
    document = cls(schema)
    # A merged (extended) definition is checked against the plain process shape only.
    process = cls({"$ref": "#/$defs/process", "$defs": schema["$defs"]})
    return document, process


def schema_problems(data: Any, locator: Locator, *, merged: bool = False) -> list[Problem]:
    """Every schema violation in ``data``, located and worded for the YAML author.

    Numbers that are not finite (``.nan``, ``.inf``) are refused wherever they are written:
    JSON has no such numbers, so JSON Schema cannot say it (NaN even passes ``minimum`` and
    ``maximum``, every comparison with it being false).
    """
    document, process = _validators()
    validator = process if merged else document
    not_finite = set(_not_finite(data))
    problems: list[Problem] = []
    reported: set[Path] = set()
    for error in validator.iter_errors(data):
        path = tuple(error.absolute_path)
        if path in not_finite and error.validator != "type":
            continue  # a bound NaN passes and infinity fails: said once, below
        reported.add(path)
        problems.extend(_translate(error, locator))
    problems += [locator.problem(path, f"{_subject(path)} must be a finite number, not "
                                 f"{_repr(_data_at(data, path))}")
                 for path in sorted(not_finite - reported, key=str)]
    return problems


def _data_at(data: Any, path: Path) -> Any:
    """The value at ``path`` in ``data``."""
    for part in path:
        data = data[part]
    return data


def _not_finite(data: Any) -> Iterator[Path]:
    """The path of every NaN or infinite number in ``data``."""
    todo: list[tuple[Path, Any]] = [((), data)]
    while todo:
        path, value = todo.pop()
        if isinstance(value, float) and not math.isfinite(value):
            yield path
        elif isinstance(value, Mapping):
            todo.extend(((*path, k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            todo.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))


# -- translating jsonschema errors ---------------------------------------------------------------


def _translate(error: Any, locator: Locator) -> Iterator[Problem]:
    path: Path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path:
        # The instance is a key of the mapping at `path`: point at that key.
        key = error.instance
        message = _message(error, schema, "the key") or f"the key {key!r}: {error.message}"
        yield locator.problem((*path, key), message, key=True)
        return
    if error.validator == "additionalProperties" and schema.get("additionalProperties") is False:
        yield from _unknown_keys(error, schema, path, locator)
        return
    if error.validator == "required" and "x-message" not in schema:
        title = schema.get("title", "this mapping")
        required = error.validator_value
        for key in required:
            if isinstance(error.instance, Mapping) and key not in error.instance:
                yield locator.problem(path, f"{_a(title)} is missing `{key}` (required keys: "
                                      f"{', '.join(required)})")
        return
    if error.validator == "uniqueItems":
        seen: list[Any] = []
        for i, item in enumerate(error.instance):
            if item in seen:
                yield locator.problem((*path, i), f"{_subject(path)} lists {item!r} more than once")
                return
            seen.append(item)
    if error.validator == "oneOf" and schema.get("x-kind") == "condition":
        if isinstance(error.instance, Mapping):  # (not a mapping: the type error says it)
            yield locator.problem(path, _explain_condition(error.instance))
        return
    subject = _subject(path)
    message = _message(error, schema, subject) or f"{subject}: {error.message}"
    at = schema.get("x-at")
    if at is not None and isinstance(error.instance, Mapping) and at in error.instance:
        yield locator.problem((*path, at), message, key=True)
    else:
        yield locator.problem(path, message)


def _message(error: Any, schema: Mapping[str, Any], subject: str) -> str | None:
    if "x-message" in schema:
        return str(schema["x-message"])
    templates = schema.get("x-messages", {})
    instance = error.instance
    value = error.validator_value
    if error.validator in templates:
        length = len(instance) if isinstance(instance, (str, list, Mapping)) else 0
        return str(templates[error.validator]).format(subject=subject, value=_repr(instance),
                                                      limit=f"{value:,}"
                                                      if isinstance(value, int) else value,
                                                      length=f"{length:,}")
    if error.validator == "type":
        expected = [value] if isinstance(value, str) else list(value)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in expected)
        message = f"{subject} must be {words}, not {_describe(instance)}"
        if "string" in expected and isinstance(instance, (bool, int, float, datetime.date)):
            message += " (quote it to keep it as text)"
        return message
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in value)
        message = f"{subject} must be one of {allowed}; not {_repr(instance)}"
        return message + did_you_mean(instance, [str(v) for v in value], _backticked)
    if error.validator == "const":
        return f"{subject} must be {_repr(value)}, not {_repr(instance)}"
    if error.validator == "pattern":
        return f"{subject} {_repr(instance)} does not match the pattern {value}"
    if error.validator == "minimum":
        return f"{subject} must be at least {value}, not {_repr(instance)}"
    if error.validator == "maximum":
        return f"{subject} must be at most {value}, not {_repr(instance)}"
    if error.validator == "exclusiveMinimum":
        return f"{subject} must be greater than {value}, not {_repr(instance)}"
    if error.validator == "minItems":
        if value == 1:
            return f"{subject} must not be empty"
        return f"{subject} needs at least {value} items"
    if error.validator == "minLength":
        return f"{subject} must not be empty"
    if error.validator == "maxLength":
        return (f"{subject} is {len(instance):,} characters long: at most {value:,} are "
                "allowed")
    if error.validator == "maxItems":
        return f"{subject} has {len(instance):,} items: at most {value:,} are allowed"
    if error.validator == "maxProperties":
        return f"{subject} has {len(instance):,} keys: at most {value:,} are allowed"
    if error.validator == "minProperties":
        return f"{_a(schema.get('title', 'this mapping'))} must not be empty"
    return None


def _unknown_keys(error: Any, schema: Mapping[str, Any], path: Path,
                  locator: Locator) -> Iterator[Problem]:
    allowed = list(schema.get("properties", {}))
    title = schema.get("title", "this mapping")
    for key in error.instance:
        if key in allowed:
            continue
        message = f"unknown key `{key}` in {title}" + did_you_mean(key, allowed, _backticked)
        message += f"; allowed keys: {', '.join(allowed)}"
        yield locator.problem((*path, key), message, key=True)


def _explain_condition(condition: Mapping[str, Any]) -> str:
    keys = list(condition)
    combinators = [k for k in keys if k in _COMBINATORS]
    operators = [k for k in keys if k in OPERATORS]
    shapes = "{field: F, OP: V}, {all: [...]}, {any: [...]} or {not: ...}"
    if not keys:
        return f"an empty condition: write {shapes}"
    if combinators and len(keys) > 1:
        others = ", ".join(f"`{k}`" for k in keys if k != combinators[0])
        return (f"`{combinators[0]}` must be the only key of its condition, found also {others}: "
                "nest the other conditions inside it")
    if "field" not in condition:
        return f"`{operators[0] if operators else keys[0]}` needs a `field` to compare"
    if not operators:
        return (f"the condition on `{condition['field']}` needs one operator: "
                f"{', '.join(OPERATORS)}")
    return (f"one operator per comparison, found {', '.join(operators)}: combine comparisons "
            "with `all: [...]`")


def _subject(path: Path) -> str:
    if not path:
        return "the process definition"
    last = path[-1]
    if isinstance(last, int):
        parent = next((p for p in reversed(path) if isinstance(p, str)), None)
        return f"item {last + 1} of `{parent}`" if parent else f"item {last + 1}"
    return f"`{last}`"


def _a(title: str) -> str:
    return ("an " if title[:1] in "aeiou" else "a ") + title


def _describe(value: Any) -> str:
    if value is None:
        return "null (nothing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {_repr(value)}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, datetime.date):
        return f"the date {value.isoformat()}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


#: The longest value quoted whole in a message; a longer one is cut, with its length.
_QUOTED = 60


def _repr(value: Any) -> str:
    if isinstance(value, str) and len(value) > _QUOTED:
        return f"{value[:_QUOTED]!r}... ({len(value):,} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** _QUOTED:
        digits = len(str(abs(value)))
        return f"a number of {digits:,} digits"
    if isinstance(value, float) and not math.isfinite(value):  # as YAML writes them
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return repr(value)


def did_you_mean(word: Any, names: Iterable[str],
                 quote: Callable[[str], str] = repr) -> str:
    """`` (did you mean 'name'?)`` for the one of ``names`` closest to ``word``, else ``""``.

    Also ``""`` when ``word`` is not text; ``quote`` writes the name (`repr` by default).
    """
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return f" (did you mean {quote(close[0])}?)" if close else ""


def _backticked(name: str) -> str:
    return f"`{name}`"
