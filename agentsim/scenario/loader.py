"""Loading scenario files: bounded safe YAML, pydantic validation, errors that name file and field.

Reading is bounded and strict (size, encoding, depth, aliases, duplicate keys, string length):
see :mod:`agentsim.scenario.safe_input` for every limit, its default and the environment variable
(``AGENTSIM_MAX_FILE_BYTES``, ...) or keyword (``limits=Limits.from_env(depth=200)``) that raises
it. Folders are scanned for regular ``*.yaml``/``*.yml`` files without following symbolic links
to folders; ``.jsonl`` case files are read when named, every line validated.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml
from pydantic import ValidationError

from agentsim.errors import InputError, ScenarioError
from agentsim.scenario.safe_input import Limits, load_yaml_file
from agentsim.scenario.schema import Scenario, metric_problems

SCENARIO_SUFFIXES = (".yaml", ".yml")
CASE_FILE_SUFFIXES = (".jsonl",)
INPUT_SUFFIXES = (*SCENARIO_SUFFIXES, *CASE_FILE_SUFFIXES)


def field_path(location: Iterable[str | int]) -> str:
    """Render a pydantic error location as ``personas[1].attributes.gender``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


MAX_PROBLEMS = 20  # reported per file; a list of 90,000 bad items is one problem repeated
MAX_SHOWN = 80  # characters of a found value shown in a message


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def problems_from(error: ValidationError) -> list[tuple[str, str]]:
    """(field path, message) pairs of a pydantic error, with what was expected and found (at
    most MAX_PROBLEMS, then one saying how many more; found values cut to MAX_SHOWN)."""
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
            message = f"{message} (found {_shown(item['input'])})"
        problems.append((field_path(location), message))
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS], ("", f"... and {more:,} more problems not shown")]
    return problems


def parse_scenario(data: object, source: str | Path) -> Scenario:
    """Validate already-parsed YAML/JSON data as a scenario; errors name ``source``."""
    if not isinstance(data, dict):
        raise ScenarioError(source, [("", "expected a mapping of scenario fields at the top level")])
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(source, problems_from(error)) from None


def read_yaml(path: Path, limits: Limits | None = None) -> object:
    """Parse a YAML file safely and within bounds (see agentsim.scenario.safe_input): no tags
    that build objects, no duplicate keys, no alias bombs; errors carry the line."""
    return load_yaml_file(path, limits)


def load_scenario(path: str | Path, *, limits: Limits | None = None) -> Scenario:
    """Read and validate one scenario file.

    Beyond the schema, a file must give its judges something to measure (see
    :func:`~agentsim.scenario.schema.metric_problems`). A ``.jsonl`` case file is validated
    whole, every line, and its first case returned (:func:`load_scenarios` gives them all)."""
    path = Path(path)
    check_input_name(path)
    if path.suffix in CASE_FILE_SUFFIXES:
        from agentsim.scenario.agentclinic import load_agentclinic

        scenarios, _ = load_agentclinic(path, limits=limits)
        return scenarios[0]
    if path.suffix in SCENARIO_SUFFIXES and data_file_kind(path) == "study":
        raise InputError("this is a study file, not a scenario: run it with agentsim study "
                         "run FILE (or plan it with agentsim study plan FILE)", source=path)
    scenario = parse_scenario(read_yaml(path, limits), path)
    problems = metric_problems(scenario)
    if problems:
        raise ScenarioError(path, problems)
    _check_variants(scenario, path)
    return scenario


def _check_variants(scenario: Scenario, path: Path) -> None:
    """The variants a file declares must expand and apply (a mirror needs two groups, a names
    variant a name pool, ...): found at validation, not half-way into a run."""
    if not scenario.variants:
        return
    from agentsim.scenario.variants import apply_variant, declared_variants

    try:
        for variant in declared_variants(scenario):
            apply_variant(scenario, variant)
    except InputError as error:
        raise InputError(error.message, source=path, field="variants") from None


def scenario_hash(scenario: Scenario) -> str:
    """Content hash of a scenario (sha256 of its canonical JSON), recorded in the manifest."""
    canonical = scenario.model_dump_json(exclude_defaults=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


CATALOGUE_PEEK_BYTES = 64 * 1024


def data_file_kind(path: Path) -> str | None:
    """``catalogue`` or ``study`` for a YAML file that lives beside scenarios but is not one,
    else None. A bias catalogue's first statement is ``catalogue: ...``; a study file has a
    top-level ``models:`` key, which no scenario has. Reads at most the first 64 KiB of a
    regular file; anything unreadable is neither (loading it then reports why)."""
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as handle:
            head = handle.read(CATALOGUE_PEEK_BYTES)
    except OSError:
        return None
    text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    statements = [line for line in text.splitlines()
                  if line.strip() and not line.lstrip().startswith("#")]
    if statements and statements[0].startswith("catalogue:"):
        return "catalogue"
    if any(line.startswith(("models:", "models :")) for line in statements):
        return "study"
    return None


def is_catalogue(path: Path) -> bool:
    """True for a bias catalogue (see :func:`data_file_kind`)."""
    return data_file_kind(path) == "catalogue"


def check_input_name(path: Path) -> None:
    """InputError unless the file's name ends in one of INPUT_SUFFIXES."""
    if path.suffix not in INPUT_SUFFIXES:
        raise InputError("not a scenario file: the name must end in .yaml or .yml (scenarios) "
                         "or .jsonl (clinical case files)", source=path)


def _entries(folder: Path) -> list[tuple[Path, bool]]:
    """(path, is a real folder) of a folder's entries, sorted by name; symbolic links to
    folders are left out (never followed)."""
    try:
        with os.scandir(folder) as scan:
            listed = sorted(scan, key=lambda entry: entry.name)
    except OSError as error:
        raise InputError(f"cannot read folder ({error.strerror or error})",
                         source=folder) from None
    entries = []
    for entry in listed:
        try:
            is_folder = entry.is_dir(follow_symlinks=False)
            if entry.is_symlink() and entry.is_dir():
                continue  # a link to a folder: not followed, so no loop can trap the scan
        except OSError:
            is_folder = False
        entries.append((Path(entry.path), is_folder))
    return entries


def _walk(folder: Path) -> Iterator[Path]:
    """Scenario files under ``folder`` in the order their paths sort (depth first, by name).

    Symbolic links to folders are skipped, so no loop can trap the scan. Any other entry
    named *.yaml/*.yml is yielded unless it is a regular file whose name starts with '_', a
    catalogue or a study file: a broken or looping link, a FIFO or a device is then reported by the loader. A
    sub-folder whose name ends in .yaml is a folder, scanned like any other."""
    stack = [iter(_entries(folder))]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        path, is_folder = item
        if is_folder:
            stack.append(iter(_entries(path)))
        elif (path.suffix in SCENARIO_SUFFIXES and not path.name.startswith("_")
              and data_file_kind(path) is None):
            yield path


def iter_scenario_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand files and folders (recursively, sorted) into scenario file paths.

    Folders give their regular ``*.yaml``/``*.yml`` files, skipping names that start with '_'
    and catalogue files (see is_catalogue); symbolic links to folders are not followed. A
    named file must end in .yaml, .yml or .jsonl. A folder with no scenario file is an error."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = False
            for child in _walk(path):
                found = True
                yield child
            if not found:
                raise InputError("no scenario files (*.yaml, *.yml) in this folder",
                                 source=path)
        elif path.exists() or path.is_symlink():
            check_input_name(path)
            yield path
        else:
            raise InputError("no such file or folder", source=path)


def _scenarios_in(path: Path, cases: list[int] | None, limit: int | None,
                  limits: Limits | None) -> Iterator[tuple[Path, Scenario]]:
    if path.suffix in CASE_FILE_SUFFIXES:
        # Published clinical case files (AgentClinic layouts) run directly.
        from agentsim.scenario.agentclinic import load_agentclinic

        scenarios, _ = load_agentclinic(path, select=cases, limit=limit, limits=limits)
        yield from ((path, scenario) for scenario in scenarios)
    else:
        yield path, load_scenario(path, limits=limits)


def load_scenarios(paths: Iterable[str | Path], *, cases: list[int] | None = None,
                   limit: int | None = None,
                   limits: Limits | None = None) -> list[tuple[Path, Scenario]]:
    """Load every scenario under ``paths`` (YAML files, folders, and ``.jsonl`` case files,
    of which ``cases``/``limit`` select); duplicate scenario ids are an error. Everything is
    read and validated before this returns, so a bad file stops a run before it starts."""
    paths = list(paths)
    limits = limits or Limits.from_env()
    loaded: list[tuple[Path, Scenario]] = []
    seen: dict[str, Path] = {}
    files = [Path(p) for p in paths if Path(p).suffix in CASE_FILE_SUFFIXES]
    others = [p for p in paths if Path(p).suffix not in CASE_FILE_SUFFIXES]
    for path, scenario in (pair for file in [*iter_scenario_files(others),
                                              *iter_scenario_files(files)]
                           for pair in _scenarios_in(file, cases, limit, limits)):
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
