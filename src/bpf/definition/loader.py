"""Loading process definitions: YAML read with positions, schema, extends, semantic checks, model.

Every problem found in a file is reported at once in one `DefinitionError`, each located
``source:line:col``; nothing raised by PyYAML or jsonschema reaches the caller.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import attrs

from bpf._errors import BpfError, DefinitionError, DefinitionWarning, Problem
from bpf.definition._extends import apply_extension
from bpf.definition._yaml import read_yaml
from bpf.definition._yaml_source import Locator, read_file
from bpf.definition.checks import check_process
from bpf.definition.conditions import condition_from_data
from bpf.definition.model import (
    DEFAULT_CATEGORIES,
    Branch,
    Outcome,
    ProcessDefinition,
    Stage,
    Step,
    phase_of,
)
from bpf.definition.schema import did_you_mean, schema_problems

_T = TypeVar("_T")

#: The package that holds the shipped process files (``processes/`` in the repository).
SHIPPED_PACKAGE = "bpf.processes"


def load_process(path: str | os.PathLike[str]) -> ProcessDefinition:
    """Load the process definition in the YAML file at ``path``.

    Raises `bpf.DefinitionError` listing every problem of the file, located ``path:line:col``;
    issues a `bpf.DefinitionWarning` per exceeded Dynamics 365 limit or suspicious condition.
    """
    source = os.fspath(path)
    chain = (str(Path(source).resolve()),)  # so that a base extending this file is a cycle
    loaded = _at_boundary(source, lambda: _load_file(Path(source), source, chain))
    _warn(loaded.warnings)
    return loaded.definition


def loads_process(text: str | bytes, source: str = "<string>") -> ProcessDefinition:
    """Load a process definition from YAML text; ``source`` names it in problems.

    A relative path in ``extends`` is taken from the current directory.
    """
    loaded = _at_boundary(source, lambda: _load_text(text, source, Path.cwd(), ()))
    _warn(loaded.warnings)
    return loaded.definition


@attrs.frozen
class _Loaded:
    """A checked definition with the data it was built from (for processes extending it)."""

    definition: ProcessDefinition
    data: Mapping[str, Any]
    warnings: tuple[Problem, ...] = ()


def _at_boundary(source: str, load: Callable[[], _T]) -> _T:
    try:
        return load()
    except BpfError:
        raise
    except Exception as error:
        # A bug or a dependency's surprise: still one of bpf's errors, with the cause kept.
        raise DefinitionError([Problem(source, 1, 1, "cannot load this definition: unexpected "
                                       f"{type(error).__name__}: {error}")]) from error


def _warn(found: tuple[Problem, ...]) -> None:
    for problem in found:
        warnings.warn(DefinitionWarning(problem), stacklevel=3)


def _load_file(path: Path, source: str, chain: tuple[str, ...]) -> _Loaded:
    return _load_text(read_file(path, source), source, path.parent, chain)


def _load_text(text: str | bytes, source: str, base_dir: Path,
               chain: tuple[str, ...]) -> _Loaded:
    document = read_yaml(text, source)
    locator = Locator(source, document)
    problems = list(document.problems)
    data = document.data
    if data is None:
        problems.append(Problem(source, 1, 1, "the document is empty: a process definition is a "
                                "mapping with at least `process`, `name`, `entity` and `stages`"))
        raise DefinitionError(problems)
    # A node the YAML layer already complained about (a refused tag, an unknown alias...) would
    # also fail the schema at the same spot: one message there is enough.
    reported = {(p.line, p.column) for p in problems}
    problems += [p for p in schema_problems(data, locator) if (p.line, p.column) not in reported]

    extends = data.get("extends") if isinstance(data, dict) else None
    if extends is not None:
        if problems:
            raise DefinitionError(problems)
        base = _base(extends, base_dir, chain, locator, problems)
        if base is None:
            raise DefinitionError(problems)
        merged = apply_extension(base.data, base.definition.process, data, locator)
        if merged.problems:
            raise DefinitionError([*problems, *merged.problems])
        locator = Locator(source, document, merged.origins,
                          fallback=document.values[("extends",)],
                          note=f" (inherited from {base.definition.process})")
        data = merged.data
        problems += schema_problems(data, locator, merged=True)

    findings = check_process(data, locator)
    reported = {(p.line, p.column) for p in problems}
    problems += [p for p in findings.errors if (p.line, p.column) not in reported]
    if problems:
        raise DefinitionError(problems)
    return _Loaded(_build(data, source, extends), data, tuple(findings.warnings))


# -- extends -------------------------------------------------------------------------------------


def _base(ref: str, base_dir: Path, chain: tuple[str, ...], locator: Locator,
          problems: list[Problem]) -> _Loaded | None:
    """The process ``ref`` names: a shipped one, or a file relative to the extending one."""
    at = ("extends",)
    if "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml")):
        path = Path(os.path.normpath(base_dir / ref))
        key = str(path.resolve())
        loader: Callable[[], _Loaded] = lambda: _load_file(path, str(path), (*chain, key))  # noqa: E731
    else:
        names = shipped_names()
        if ref not in names:
            hint = did_you_mean(ref, names)
            problems.append(locator.problem(at, f"unknown process {ref!r} to extend{hint}: "
                                            f"shipped processes are {', '.join(names)}; a file "
                                            "path needs a '/' or a .yaml suffix"))
            return None
        key = f"shipped:{ref}"
        loader = lambda: _load_shipped(ref, (*chain, key))  # noqa: E731
    if key in chain:
        problems.append(locator.problem(at, f"`extends` goes round in a circle: {ref!r} extends "
                                        "this file, directly or through other files"))
        return None
    try:
        return loader()
    except DefinitionError as error:
        unreadable = len(error.problems) == 1 and error.problems[0].message.startswith(
            "cannot read the file")
        reason = error.problems[0].message if unreadable else \
            f"it has {len(error.problems)} problem(s), listed with their own locations"
        problems.append(locator.problem(at, f"cannot extend {ref!r}: {reason}"))
        if not unreadable:
            problems.extend(error.problems)
        return None


# -- shipped processes ---------------------------------------------------------------------------


def _shipped_directory() -> Traversable:
    return resources.files(SHIPPED_PACKAGE)


_shipped: dict[str, _Loaded] = {}


@functools.cache
def shipped_names() -> tuple[str, ...]:
    """The names of the shipped processes: ``processes/NAME.yaml`` holds ``process: NAME``."""
    return tuple(sorted(
        entry.name[: -len(".yaml")] for entry in _shipped_directory().iterdir()
        if entry.is_file() and entry.name.endswith(".yaml")
    ))


def _load_shipped(name: str, chain: tuple[str, ...] = ()) -> _Loaded:
    # Cached: shipped files do not change while a program runs, and every flow shares them.
    loaded = _shipped.get(name)
    if loaded is None:
        resource = _shipped_directory().joinpath(f"{name}.yaml")
        source = str(resource)
        loaded = _load_text(resource.read_bytes(), source, Path(source).parent,
                            chain or (f"shipped:{name}",))
        _shipped[name] = loaded
    return loaded


def shipped_process(name: str) -> ProcessDefinition:
    """The shipped process ``name`` (known to be shipped), loaded once."""
    return _at_boundary(name, lambda: _load_shipped(name)).definition


# -- building the model --------------------------------------------------------------------------


def _build(data: Mapping[str, Any], source: str, extends: str | None) -> ProcessDefinition:
    categories = tuple(data.get("categories", DEFAULT_CATEGORIES))
    entity = data["entity"]
    return ProcessDefinition(
        process=data["process"],
        name=data["name"],
        entity=entity,
        stages=tuple(_stage(s, entity, categories) for s in data["stages"]),
        version=data.get("version", 1),
        pipeline_field=data.get("pipeline_field"),
        roles=tuple(data.get("roles", ())),
        outcomes={name: Outcome(name, outcome.get("set", {}))
                  for name, outcome in data.get("outcomes", {}).items()},
        categories=categories,
        description=data.get("description"),
        extends=extends,
        reactivate_set=data.get("reactivate", {}).get("set", {}),
        source=source,
    )


def _stage(data: Mapping[str, Any], entity: str, categories: tuple[str, ...]) -> Stage:
    category = data.get("category")
    return Stage(
        id=data["id"],
        name=data["name"],
        entity=data.get("entity", entity),
        phase=data.get("phase") or phase_of(category, categories, data["name"]),
        category=category,
        steps=tuple(_step(s) for s in data.get("steps", ())),
        next=tuple(
            Branch(b["stage"], condition_from_data(b["when"]) if "when" in b else None)
            for b in data.get("next", ())
        ),
        end=data.get("end", False),
        probability=_number(data.get("probability")),
        forecast_category=data.get("forecast_category"),
        guidance=data.get("guidance"),
        stale_after_days=_number(data.get("stale_after_days")),
        on_enter=tuple(data.get("on_enter", ())),
        on_exit=tuple(data.get("on_exit", ())),
        after_enter=tuple(data.get("after_enter", ())),
        after_exit=tuple(data.get("after_exit", ())),
    )


def _step(data: Mapping[str, Any]) -> Step:
    return Step(
        field=data["field"],
        label=data["label"],
        type=data.get("type", "text"),
        required=data.get("required", False),
        choices=tuple(data.get("choices", ())),
        description=data.get("description"),
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
