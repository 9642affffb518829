"""Reading a study file and turning it into the run it defines.

:func:`load_study` reads the file as scenario files are read (bounded, safe YAML; every problem
named with the file and the field) into a :class:`Study`; :meth:`Study.settings` gives the
:class:`~agentsim.api.settings.RunSettings` its design shares with ``agentsim run`` (checked as
the command line checks them) and :meth:`Study.run_options` the runner's options with the
study's factors: a model set per short name, the settings, the arms. The manifest records the
file (its bytes' sha256 and its validated data) under ``study``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentsim.errors import InputError, ScenarioError
from agentsim.scenario.loader import problems_from
from agentsim.scenario.safe_input import load_yaml_file
from agentsim.studies.schema import ScenarioSource, StudyFile

__all__ = ["STUDY_FOLDER", "Study", "load_study", "parse_sets"]

STUDY_FOLDER = Path("scenarios") / "studies"  # where the shipped studies live


@dataclass(frozen=True)
class Study:
    """A validated study file: where it is, its bytes' hash and its fields; ``overrides``
    holds what one run replaced (``--models``, ``--replicates``), recorded in the manifest
    beside the file's hash."""

    path: Path
    sha256: str
    spec: StudyFile
    overrides: dict[str, Any] = field(default_factory=dict)

    def overridden(self, *, models: dict[str, str] | None = None,
                   replicates: int | None = None,
                   sets: dict[str, Any] | None = None) -> Study:
        """The study with fields replaced for one run — ``sets`` (field → value, as
        ``--set FIELD=YAML``), its models factor (``--models``) or its replicates — for a smoke
        test on the embedded model or the same design on other models. Recorded in the
        manifest beside the file's hash; the result is validated as the file is (an error
        names the option and the field). A replaced models factor drops the file's
        controls.model unless it is still one of them."""
        update = {**(sets or {})}
        if models:
            update["models"] = dict(models)
        if replicates is not None:
            update["replicates"] = replicates
        if not update:
            return self
        data = self.spec.model_dump(exclude_unset=True) | update
        chosen = (data.get("controls") or {}).get("model")
        if "models" in update and chosen is not None and chosen not in update["models"]:
            data["controls"] = {**data["controls"], "model": None}
        try:
            spec = StudyFile.model_validate(data)
        except ValidationError as error:
            where, message = problems_from(error)[0]
            source = ("--set" if sets and where.split(".")[0].split("[")[0] in sets
                      else "--models" if models and where.startswith("models")
                      else "--replicates" if replicates is not None else "--set")
            raise InputError(message, source=source, field=where or None) from None
        return replace(self, spec=spec, overrides={**self.overrides, **update})

    @property
    def id(self) -> str:
        """The study's id."""
        return self.spec.id

    def resolve(self, relative: str | None) -> str | None:
        """A path of the file, relative to the study file's folder (absolute ones as given)."""
        if relative is None:
            return None
        path = Path(relative).expanduser()
        return str(path if path.is_absolute() else self.path.parent / path)

    def sources(self) -> list[ScenarioSource]:
        """The scenario sources, each path resolved."""
        out = []
        for item in self.spec.scenarios:
            source = ScenarioSource(path=item) if isinstance(item, str) else item
            out.append(source.model_copy(update={"path": self.resolve(source.path)}))
        return out

    def load_scenarios(self) -> list[tuple[Path, Any]]:
        """Every scenario of the study, each source's tags and cases applied; the same
        scenario from two sources is an error."""
        from agentsim.api import load_scenarios

        found: list[tuple[Path, Any]] = []
        seen: dict[str, Path] = {}
        for index, source in enumerate(self.sources()):
            if not Path(str(source.path)).exists():
                raise InputError(f"{source.path} does not exist (paths are relative to the "
                                 "study file's folder)", source=self.path,
                                 field=f"scenarios[{index}]")
            for path, scenario in load_scenarios(source.path, tag=source.tags,
                                                 cases=source.cases, limit=source.limit):
                if scenario.id in seen:
                    raise InputError(f"scenario {scenario.id!r} comes from {seen[scenario.id]} "
                                     f"and {path}", source=self.path,
                                     field=f"scenarios[{index}]")
                seen[scenario.id] = path
                found.append((path, scenario))
        return found

    def settings(self, **run_time: Any) -> Any:
        """The :class:`~agentsim.api.settings.RunSettings` of the study's control cell plus
        ``run_time`` options (out, concurrency, executor, cache, ...: how it runs, not what)."""
        from agentsim.api.settings import RunSettings

        spec = self.spec
        control = spec.cell_models()[spec.control_of("model")]
        vary = spec.variants if isinstance(spec.variants, list) else ()
        return RunSettings(
            model=control["model"], roles=control["roles"], rounds=spec.rounds,
            replicates=spec.replicates, seed=spec.seed, temperature=spec.temperature,
            max_tokens=spec.max_tokens, max_turns=spec.max_turns, probes=spec.probes,
            mitigation_arg=spec.mitigation_options, bias=tuple(spec.biases),
            bias_catalogue=self.resolve(spec.bias_catalogue),
            preset=",".join(spec.presets) or None, prompts=self.resolve(spec.prompts),
            vary=tuple(vary), no_variants=spec.variants == "none",
            **{"models_config": self.resolve(spec.models_config), **run_time})

    def run_options(self, settings: Any) -> Any:
        """The runner's options: ``settings``' with the study's model sets, settings, arms,
        judges and spending limit (a run-time ``max_cost`` wins over the file's)."""
        spec = self.spec
        options = settings.run_options(tuple(spec.arms))
        return replace(options, study_models=spec.cell_models(),
                       settings=tuple(spec.settings) if spec.settings else None,
                       judges=tuple(spec.judges) if spec.judges else None,
                       max_cost=options.max_cost if options.max_cost is not None
                       else spec.max_cost)

    def controls(self) -> dict[str, str]:
        """The control level of each factor the study varies (more than one level)."""
        spec = self.spec
        levels = {"model": list(spec.models), "setting": spec.settings or [],
                  "arm": spec.arms}
        return {factor: str(spec.control_of(factor)) for factor, values in levels.items()
                if len(values) > 1}

    def manifest_entry(self) -> dict[str, Any]:
        """What the manifest records of the study (``study``): the file, its hash, its data."""
        return {"id": self.id, "path": str(self.path), "sha256": self.sha256,
                "data": self.spec.model_dump(mode="json"), "controls": self.controls(),
                "overrides": self.overrides}


def parse_sets(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``--set FIELD=VALUE`` (repeatable) as field → value, each value read as YAML (``3``,
    ``[a, b]``, ``{metric: escalation}``) by the bounded loader."""
    from agentsim.scenario.safe_input import parse_yaml

    found: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"expected FIELD=VALUE, got {item!r}", source="--set")
        if name.strip() not in StudyFile.model_fields:
            raise InputError(f"{name.strip()!r} is not a field of study files (fields: "
                             f"{', '.join(StudyFile.model_fields)})", source="--set")
        found[name.strip()] = parse_yaml(text, "--set") if text.strip() else None
    return found


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; every problem names the file and the field (exit 2
    on the command line)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such study file", source=path)
    data = load_yaml_file(path)
    if not isinstance(data, dict):
        raise InputError("expected a mapping of study fields at the top level", source=path)
    try:
        spec = StudyFile.model_validate(data)
    except ValidationError as error:
        problems = [(where, message.replace("see the scenario reference", "see the study "
                                            "file reference"))
                    for where, message in problems_from(error)]
        raise ScenarioError(path, problems) from None
    return Study(path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), spec=spec)
