"""Applying an extending file (``extends:``) to the data of its base process.

Top-level keys replace the base's. ``stages`` is a list of stage patches applied in order, each
matched by ``id``: change a stage's keys, patch its steps (``remove``, ``change``, ``require``,
``add``, in that order) or replace them (a list), insert a new stage (``insert_after`` /
``insert_before``), or remove one (``remove: true``). The result is plain process data, checked
like any process; `origins` maps its paths back to the extending file so problems point there.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import attrs

from bpf._errors import Problem
from bpf.definition._yaml_source import Locator, Path

# Keys of the extending file that are not process data.
_NOT_COPIED = ("extends", "stages")


@attrs.define
class _Origin:
    """Where a merged stage's parts come from in the extending file (relative paths)."""

    own: dict[Path, Path] = attrs.field(factory=dict)
    steps: list[dict[Path, Path]] = attrs.field(factory=list)


@attrs.frozen
class Merged:
    """The extended process data, the origins of its paths, and the problems of the patches."""

    data: dict[str, Any]
    origins: dict[Path, Path]
    problems: tuple[Problem, ...]


def apply_extension(base: Mapping[str, Any], base_name: str, extension: Mapping[str, Any],
                    locator: Locator) -> Merged:
    """Apply ``extension`` (schema-checked) to ``base`` (a valid process's data)."""
    data = copy.deepcopy(dict(base))
    data.pop("extends", None)
    origins: dict[Path, Path] = {}
    for key, value in extension.items():
        if key not in _NOT_COPIED:
            data[key] = copy.deepcopy(value)
            origins[(key,)] = (key,)

    problems: list[Problem] = []
    stages: list[dict[str, Any]] = data["stages"]
    stage_origins = [
        _Origin(steps=[{} for _ in stage.get("steps", ())]) for stage in stages
    ]

    def index_of(stage_id: str) -> int | None:
        return next((i for i, s in enumerate(stages) if s["id"] == stage_id), None)

    def unknown_stage(path: Path, stage_id: str, hint: str = "") -> None:
        known = ", ".join(s["id"] for s in stages)
        problems.append(locator.problem(path, f"{base_name} has no stage {stage_id!r}{hint} "
                                        f"(its stages: {known})"))

    for p, patch in enumerate(extension.get("stages", ())):
        at: Path = ("stages", p)
        stage_id = patch["id"]
        anchor = patch.get("insert_after", patch.get("insert_before"))
        if anchor is not None:
            key = "insert_after" if "insert_after" in patch else "insert_before"
            i = index_of(anchor)
            if i is None:
                unknown_stage((*at, key), anchor)
                continue
            new = {k: copy.deepcopy(v) for k, v in patch.items()
                   if k not in ("insert_after", "insert_before")}
            position = i + 1 if key == "insert_after" else i
            stages.insert(position, new)
            stage_origins.insert(position, _Origin(
                own={(): at}, steps=[{(): (*at, "steps", j)} for j in range(len(new.get("steps",
                                                                                          ())))]))
            continue
        i = index_of(stage_id)
        if i is None:
            unknown_stage((*at, "id"), stage_id, "; to add a stage, give `insert_after` or "
                          "`insert_before`")
            continue
        if patch.get("remove") is True:
            del stages[i], stage_origins[i]
            continue
        stage, origin = stages[i], stage_origins[i]
        origin.own[()] = at
        for key, value in patch.items():
            if key == "id":
                continue
            if key == "steps":
                _patch_steps(stage, origin, value, at, locator, problems)
                continue
            stage[key] = copy.deepcopy(value)
            origin.own[(key,)] = (*at, key)
        # `next` and `end: true` are alternatives: setting one drops the base's other.
        if "next" in patch and "end" not in patch:
            stage.pop("end", None)
        if patch.get("end") is True and "next" not in patch:
            stage.pop("next", None)

    for i, origin in enumerate(stage_origins):
        for rel, own in origin.own.items():
            origins[("stages", i, *rel)] = own
        for s, step_origin in enumerate(origin.steps):
            for rel, own in step_origin.items():
                origins[("stages", i, "steps", s, *rel)] = own
    return Merged(data, origins, tuple(problems))


def _patch_steps(stage: dict[str, Any], origin: _Origin, patch: Any, at: Path,
                 locator: Locator, problems: list[Problem]) -> None:
    here: Path = (*at, "steps")
    if isinstance(patch, list):  # a list replaces every step
        stage["steps"] = copy.deepcopy(patch)
        origin.steps = [{(): (*here, j)} for j in range(len(patch))]
        return
    steps: list[dict[str, Any]] = stage.setdefault("steps", [])

    def index_of(field: str, path: Path, action: str) -> int | None:
        i = next((k for k, s in enumerate(steps) if s["field"] == field), None)
        if i is None:
            known = ", ".join(s["field"] for s in steps) or "none"
            problems.append(locator.problem(path, f"stage {stage['id']!r} has no step for field "
                                            f"{field!r} to {action} (its steps: {known})",
                                            key=action == "change"))
        return i

    for j, field in enumerate(patch.get("remove", ())):
        i = index_of(field, (*here, "remove", j), "remove")
        if i is not None:
            del steps[i], origin.steps[i]
    for field, changes in patch.get("change", {}).items():
        i = index_of(field, (*here, "change", field), "change")
        if i is not None:
            steps[i].update(copy.deepcopy(changes))
            if steps[i].get("type", "text") != "choice" and "choices" not in changes:
                steps[i].pop("choices", None)  # a step that is no longer a choice has none
            origin.steps[i][()] = (*here, "change", field)
            for key in changes:
                origin.steps[i][(key,)] = (*here, "change", field, key)
    for j, field in enumerate(patch.get("require", ())):
        i = index_of(field, (*here, "require", j), "require")
        if i is not None:
            steps[i]["required"] = True
            origin.steps[i][("required",)] = (*here, "require", j)
    for j, step in enumerate(patch.get("add", ())):
        steps.append(copy.deepcopy(step))
        origin.steps.append({(): (*here, "add", j)})
