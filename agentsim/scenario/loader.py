"""Loading scenario files: safe YAML, pydantic validation, errors that name file and field."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml
from pydantic import ValidationError

from agentsim.errors import InputError, ScenarioError
from agentsim.scenario.schema import PROTOCOL_NAMES, Scenario

SCENARIO_SUFFIXES = (".yaml", ".yml")


def field_path(location: Iterable[str | int]) -> str:
    """Render a pydantic error location as ``personas[1].attributes.gender``.

    Tagged unions put the tag in the location (``protocol.discussion.rounds``); it is not a
    field the user wrote, so it is dropped.
    """
    text, previous = "", None
    for part in location:
        if previous == "protocol" and part in PROTOCOL_NAMES:
            previous = part
            continue
        previous = part
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def problems_from(error: ValidationError) -> list[tuple[str, str]]:
    """(field path, message) pairs of a pydantic error, with what was expected and found."""
    problems = []
    items = error.errors()
    deeper = {tuple(i["loc"][:-1]) for i in items if len(i["loc"]) > 1}
    for item in items:
        if item["type"] == "too_short" and tuple(item["loc"]) in deeper:
            continue  # a list whose items failed is reported through those items
        location = [part for part in item["loc"] if part not in {"function-after[_consistent(), Scenario]"}]
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see the scenario reference in the README)"
        elif item["type"] == "missing":
            message = "required field is missing"
        elif item["type"] not in {"value_error", "assertion_error"} and "input" in item:
            message = f"{message} (found {item['input']!r})"
        problems.append((field_path(location), message))
    return problems


def parse_scenario(data: object, source: str | Path) -> Scenario:
    """Validate already-parsed YAML/JSON data as a scenario; errors name ``source``."""
    if not isinstance(data, dict):
        raise ScenarioError(source, [("", "expected a mapping of scenario fields at the top level")])
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(source, problems_from(error)) from None


def read_yaml(path: Path) -> object:
    """Parse a YAML file safely (no tags that build objects); errors carry the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot read file ({error.strerror})", source=path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(f"not valid YAML: {problem}", source=path, line=line) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file."""
    path = Path(path)
    return parse_scenario(read_yaml(path), path)


def scenario_hash(scenario: Scenario) -> str:
    """Content hash of a scenario (sha256 of its canonical JSON), recorded in the manifest."""
    canonical = scenario.model_dump_json(exclude_defaults=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def is_catalogue(path: Path) -> bool:
    """True for a data file that lives beside scenarios but is not one (a bias catalogue):
    its first statement is ``catalogue: ...``."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and not line.lstrip().startswith("#"):
                return line.startswith("catalogue:")
    return False


def iter_scenario_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand files and folders (recursively, sorted) into scenario file paths.

    Folders skip files whose name starts with '_' and catalogue files (see is_catalogue).
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if (child.suffix in SCENARIO_SUFFIXES and not child.name.startswith("_")
                        and not is_catalogue(child)):
                    yield child
        elif path.exists():
            yield path
        else:
            raise InputError("no such file or folder", source=path)


CASE_FILE_SUFFIXES = (".jsonl",)


def _scenarios_in(path: Path, cases: list[int] | None,
                  limit: int | None) -> Iterator[tuple[Path, Scenario]]:
    if path.suffix in CASE_FILE_SUFFIXES:
        # Published clinical case files (AgentClinic layouts) run directly.
        from agentsim.scenario.importers.agentclinic import load_agentclinic

        scenarios, _ = load_agentclinic(path, select=cases, limit=limit)
        yield from ((path, scenario) for scenario in scenarios)
    else:
        yield path, load_scenario(path)


def load_scenarios(paths: Iterable[str | Path], *, cases: list[int] | None = None,
                   limit: int | None = None) -> list[tuple[Path, Scenario]]:
    """Load every scenario under ``paths`` (YAML files, folders, and ``.jsonl`` case files,
    of which ``cases``/``limit`` select); duplicate scenario ids are an error."""
    paths = list(paths)
    loaded: list[tuple[Path, Scenario]] = []
    seen: dict[str, Path] = {}
    files = [Path(p) for p in paths if Path(p).suffix in CASE_FILE_SUFFIXES]
    others = [p for p in paths if Path(p).suffix not in CASE_FILE_SUFFIXES]
    for path, scenario in (pair for file in [*iter_scenario_files(others), *files]
                           for pair in _scenarios_in(file, cases, limit)):
        if scenario.id in seen:
            raise ScenarioError(
                path, [("id", f"scenario id {scenario.id!r} is also used by {seen[scenario.id]}")]
            )
        seen[scenario.id] = path
        loaded.append((path, scenario))
    if not loaded:
        raise InputError("no scenario files found", source=", ".join(map(str, paths)))
    return loaded


def scenario_to_data(scenario: Scenario) -> dict:
    """Plain data for writing a scenario file: defaults dropped, labels in compact form."""
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    data["personas"] = [
        {**p, "attributes": p.get("attributes", {})} for p in data["personas"]
    ]
    if "protocol" in data or scenario.protocol.name != "discussion":
        # The protocol name is a default of its own model, but it selects the model: keep it.
        data["protocol"] = {"name": scenario.protocol.name, **data.get("protocol", {})}
    for task, model in zip(data.get("tasks", []), scenario.tasks, strict=True):
        if model.stereotype is not None:
            task["stereotype"] = {model.stereotype.attribute: model.stereotype.value}
    return data


def dump_scenario(scenario: Scenario, path: str | Path) -> Path:
    """Write a scenario as YAML (key order: id, domain, description, personas, tasks, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(
        scenario_to_data(scenario), sort_keys=False, allow_unicode=True, width=100
    )
    path.write_text(text, encoding="utf-8")
    return path
