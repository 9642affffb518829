"""Planning a run: the jobs, the scenario each runs, the checks before anything is written,
and the manifest of a new run.

Everything here is decided from the scenarios and the options alone — no model is called and no
file is written — so a plan can be shown, checked and shipped before a run starts. Each
protocol's own part (its job fields, conditions, roles, default judges) comes from its plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from agentsim.core.jobs import ConversationJob, derive_seed
from agentsim.core.manifest import Manifest, scenario_entry
from agentsim.core.plan import Plan
from agentsim.errors import InputError
from agentsim.mitigations.base import resolve_arm
from agentsim.models.client import check_model_name
from agentsim.models.endpoints import EndpointResolver
from agentsim.orchestrator.kernel import plugin_for
from agentsim.registry import REGISTRY, recorded_options
from agentsim.resources import asset_path
from agentsim.scenario.biases import BiasCatalogue, load_catalogue
from agentsim.scenario.presets import Preset, apply_preset, load_preset
from agentsim.scenario.prompt_files import prompt_file_protocol, read_prompt_file
from agentsim.scenario.protocol_settings import settings_model
from agentsim.scenario.schema import Scenario
from agentsim.runs.options import RunOptions, effective_concurrency
from agentsim.scenario.variants import Variant, apply_variant, declared_variants

if TYPE_CHECKING:
    from agentsim.models.preflight import Preflight

DEFAULT_TEMPERATURE = 0.7  # of a run that sets none and whose protocol's settings set none
DEFAULT_MAX_TOKENS = 200
ROLES = ("agent", "single", "judge", "moderator", "doctor", "patient", "measurement",
         "finetuned")
DEFAULT_CATALOGUE = asset_path("agentsim.scenario", "data", "biases.yaml")


def configured(scenarios: Sequence[tuple[Path, Scenario]],
               options: RunOptions) -> list[tuple[Path, Scenario]]:
    """The scenarios with the run's ``--preset`` and ``--prompts`` applied to their protocol
    settings. A preset chosen for the run wins over the scenario files' settings (the user
    asked for the published protocol; ``--rounds`` and ``--setting`` still win over both), and
    a prompt file's prompts over the preset's. A preset or prompt file of a protocol no
    scenario runs is an error."""
    if options.preset is None and options.prompts is None:
        return list(scenarios)
    protocols = {s.protocol.name for _, s in scenarios}
    presets = {}
    for name in preset_names(options.preset):
        preset = load_checked_preset(name, protocols)
        if preset.protocol in presets:
            raise InputError(f"two presets of protocol {preset.protocol!r}: "
                             f"{presets[preset.protocol].id} and {name}; give one per "
                             "protocol", source="--preset")
        presets[preset.protocol] = preset
    protocol, texts = (prompt_file_of(options.prompts, protocols) if options.prompts
                       else (None, {}))
    out = []
    for path, scenario in scenarios:
        settings = scenario.protocol
        data = {**settings.model_dump(mode="json", exclude_unset=True), "name": settings.name}
        preset = presets.get(settings.name)
        if preset is not None:
            data = apply_preset({**data, **preset.settings, "preset": preset.id})
        if protocol == settings.name:
            data["prompts"] = {**data.get("prompts", {}), **texts}
        try:
            updated = settings_model(settings.name).model_validate(data)
        except ValidationError as error:
            raise InputError(str(error), source=path) from None
        out.append((path, scenario.model_copy(update={"protocol": updated})))
    return out


def preset_names(given: str | None) -> list[str]:
    """The presets of ``--preset``: one name, or several joined with ',' (one per protocol:
    a study of discussions and consultations names a preset of each)."""
    return [name.strip() for name in (given or "").split(",") if name.strip()]


def preset_options(options: RunOptions) -> RunOptions:
    """``options`` with the ``--preset``'s mitigation options under the user's (for the
    mitigations the run's arms include) and its bias catalogue unless the user named one."""
    if options.preset is None:
        return options
    members = {part for arm in options.arms for part in arm.split("+")}
    mitigations = dict(options.mitigation_options)
    catalogue = options.bias_catalogue
    for name in preset_names(options.preset):
        try:
            preset = load_preset(name)
        except ValueError as error:
            raise InputError(str(error), source="--preset") from None
        mitigations |= {mitigation: {**given, **options.mitigation_options.get(mitigation, {})}
                        for mitigation, given in preset.mitigations.items()
                        if mitigation in members}
        if catalogue is None and preset.bias_catalogue:
            catalogue = str(asset_path("agentsim.scenario", "data", preset.bias_catalogue))
    return replace(options, mitigation_options=mitigations, bias_catalogue=catalogue)


def load_checked_preset(name: str, protocols: set[str]) -> Preset:
    """The preset ``name``, which must configure a protocol the run has (InputError)."""
    try:
        preset = load_preset(name)
    except ValueError as error:
        raise InputError(str(error), source="--preset") from None
    if preset.protocol not in protocols:
        raise InputError(f"{name!r} is a preset of protocol {preset.protocol!r}; this run's "
                         f"scenarios run {', '.join(sorted(protocols))}", source="--preset")
    return preset


def prompt_file_of(path: str, protocols: set[str]) -> tuple[str, dict[str, str]]:
    """(protocol, prompts) of a ``--prompts`` file, whose protocol the run must have."""
    protocol = prompt_file_protocol(path)
    if protocol not in protocols:
        raise InputError(f"these are prompts of protocol {protocol!r}; this run's scenarios "
                         f"run {', '.join(sorted(protocols))}", source=path, field="protocol")
    texts, _ = read_prompt_file(path, protocol, settings_model(protocol).prompt_spec)
    return protocol, texts


def variants_for(scenario: Scenario, options: RunOptions) -> list[Variant]:
    """The variants a scenario runs as: --vary's, else the base and those the file declares."""
    return list(options.variants) if options.variants is not None else declared_variants(scenario)


def bias_conditions(scenario: Scenario, options: RunOptions) -> list[str]:
    """The conditions a scenario runs under (its protocol's: a clinical case's biases)."""
    return plugin_for(scenario.protocol.name).conditions(scenario, options)


def settings_for(scenario: Scenario, options: RunOptions) -> list[str | None]:
    """The settings a scenario runs under: a study's (each a cell) when its protocol takes a
    setting, else the one ``--setting`` (None: the file's)."""
    if options.settings and plugin_for(scenario.protocol.name).takes("setting", scenario):
        return list(options.settings)
    return [options.setting]


def plan_jobs(scenarios: Sequence[Scenario], options: RunOptions) -> list[ConversationJob]:
    """Expand scenarios × replicates × model sets × settings × arms × variants × bias
    conditions into jobs (a plain run has one model set and one setting).

    The seed depends on the run seed, the scenario and the replicate only, so the model sets,
    settings, mitigation arms, variants and conditions of one scenario and replicate are
    paired: they share every draw.
    """
    jobs = []
    for scenario in scenarios:
        name = scenario.protocol.name
        common: dict[str, Any] = {"scenario_id": scenario.id, "protocol": name,
                                  "temperature": DEFAULT_TEMPERATURE
                                  if options.temperature is None else options.temperature,
                                  "max_tokens": DEFAULT_MAX_TOKENS
                                  if options.max_tokens is None else options.max_tokens,
                                  "probes": options.probes,
                                  "mitigation_options": options.mitigation_options}
        cells = [({**common, "models": models, "model_label": label,
                   **plugin_for(name).job_fields(scenario, replace(options, setting=setting))})
                 for label, models in options.model_sets()
                 for setting in settings_for(scenario, options)]
        for replicate in range(options.replicates):
            seed = derive_seed(options.seed, scenario.id, replicate)
            for fields in cells:
                for arm in options.arms:
                    for variant in variants_for(scenario, options):
                        for bias in bias_conditions(scenario, options):
                            jobs.append(ConversationJob(**fields, replicate=replicate,
                                                        seed=seed, variant=variant.id,
                                                        bias=bias, arm=arm))
    return jobs


def judges_for(scenarios: Sequence[Scenario], options: RunOptions) -> tuple[str, ...]:
    """The judges of a run: the user's, else the default ones of each protocol present."""
    if options.judges is not None:
        return options.judges
    names: list[str] = []
    for scenario in scenarios:
        for name in plugin_for(scenario.protocol.name).default_judges:
            if name not in names:
                names.append(name)
    return tuple(names)


def variant_scenarios(scenarios: Sequence[Scenario],
                      options: RunOptions) -> dict[tuple[str, str], Scenario]:
    """Every (scenario id, variant id) → the scenario with the variant applied."""
    return {(s.id, v.id): apply_variant(s, v) for s in scenarios
            for v in variants_for(s, options)}


def catalogue_for(scenarios: Sequence[Scenario], options: RunOptions) -> BiasCatalogue | None:
    """The bias catalogue, when a clinical scenario is run with biases; checks every name."""
    wanted = {key for s in scenarios for cond in bias_conditions(s, options) if cond != "none"
              for key in cond.split("+")}
    if not wanted:
        return None
    catalogue = load_catalogue(options.bias_catalogue or DEFAULT_CATALOGUE)
    for key in sorted(wanted):
        catalogue.get(key)
    return catalogue


def check_roles(options: RunOptions, scenarios: Sequence[Scenario],
                resolver: EndpointResolver | None = None) -> None:
    """Every model name routes, and every --role key names a role or a persona."""
    known = set(ROLES)
    known |= {p.id for s in scenarios for p in s.personas}
    known |= {role for s in scenarios for role in plugin_for(s.protocol.name).model_roles(s)}
    if resolver is None:
        from agentsim.runs.clients import build_client

        resolver = build_client(options).resolver
    for label, models in options.model_sets():
        source = "--role" if label is None else f"models.{label}"
        for key, model in models.items():
            if key != "default" and key not in known:
                raise InputError(f"unknown role {key!r} (roles: {', '.join(sorted(ROLES))}, "
                                 "or a persona id)", source=source)
            endpoint = resolver.resolve(model)
            if endpoint.in_process:
                check_model_name(endpoint.model)
    roles = {key for _, models in options.model_sets() for key in models}
    measured = [s.protocol.measurement for s in scenarios if hasattr(s.protocol, "measurement")]
    if "measurement" in roles and measured and set(measured) == {"records"}:
        # A model that would never be called: the user believes a model answers the tests.
        raise InputError("no conversation uses the measurement model: the clinical scenarios "
                         "answer test requests from their records (protocol.measurement: "
                         "records); drop --role measurement or set measurement: model",
                         source="--role")
    in_run: set[str] = set()
    protocols = {s.protocol.name for s in scenarios}
    for arm in options.arms:
        # Unknown mitigations, bad files and bad options fail before the run starts.
        chain = resolve_arm(arm, options.mitigation_options)
        for member in chain:
            member.check_arm(chain)
            if not any(member.supports(p) for p in protocols):
                raise InputError(f"mitigation {member.name!r} supports the protocols "
                                 f"{', '.join(sorted(member.protocols or ()))}; this run has "
                                 f"{', '.join(sorted(protocols))}", source="--mitigation")
        in_run |= {getattr(m, "name", None) or type(m).__name__ for m in chain}
        in_run |= set(arm.split("+"))
        if "finetuned" in arm.split("+") and any(
                "finetuned" not in models for _, models in options.model_sets()):
            raise InputError("the finetuned arm needs a model: --role finetuned=MODEL",
                             source="--role")
    unused = sorted(set(options.mitigation_options) - in_run)
    if unused:
        raise InputError(f"options for mitigations not in the run: {', '.join(unused)} "
                         f"(arms: {', '.join(options.arms)}); add the mitigation "
                         "(--mitigation, --arms) or drop the option", source="--mitigation-arg")


def new_manifest(run_id: str, scenarios: Sequence[tuple[Path, Scenario]], options: RunOptions,
                 jobs: Sequence[ConversationJob],
                 catalogue: BiasCatalogue | None = None,
                 checked: Preflight | None = None,
                 warnings: Sequence[str] = (),
                 judges: Sequence[str] | None = None,
                 **extra: Any) -> dict[str, Any]:
    """The manifest of a new run: resolved config, scenarios with hashes, models, seeds, jobs,
    the judges it will be judged with (so a resume judges it alike); ``extra``: more fields
    by name (a study's ``study``)."""
    plain = [s for _, s in scenarios]
    judged = judges if judges is not None else judges_for(plain, options)
    return Manifest.new(
        run_id,
        options={k: v for k, v in options.__dict__.items() if k != "variants"},
        models={"default": options.model, **options.roles},
        endpoints=checked.manifest_entry() if checked else {},
        warnings=[*warnings, *(checked.warnings if checked else [])],
        judges=list(judged),
        plugins=plugin_options(judged, options),
        arms=list(options.arms), seed=options.seed,
        scenarios={s.id: scenario_entry(str(path), s) for path, s in scenarios},
        variants={s.id: [v.model_dump() for v in variants_for(s, options)] for s in plain},
        bias_catalogue=catalogue.model_dump() if catalogue else None,
        jobs=jobs, **extra).to_json()


EXECUTOR = "local"  # where conversations run: the one executor so far


def executor_options(options: RunOptions) -> dict[str, Any]:
    """The executor's options for a run (validated by its options model when it is made)."""
    return {"concurrency": effective_concurrency(options)}


def plugin_options(judges: Sequence[str],
                   options: RunOptions) -> dict[str, dict[str, dict[str, Any]]]:
    """Every option of each plugin the run uses, as its options model validates it, defaults
    included (:func:`agentsim.registry.recorded_options`): what the manifest records."""
    mitigations: dict[str, dict[str, Any]] = {}
    for arm in options.arms:
        for member in resolve_arm(arm, options.mitigation_options):
            key = getattr(member, "name", None) or type(member).__name__
            mitigations[key] = recorded_options(type(member),
                                                options.mitigation_options.get(key, {}))
    return {
        "judge": {name: recorded_options(REGISTRY.get("judge", name), {}) for name in judges},
        "mitigation": mitigations,
        "executor": {EXECUTOR: recorded_options(REGISTRY.get("executor", EXECUTOR),
                                                executor_options(options))},
    }


def build_plan(scenarios: Sequence[Scenario], options: RunOptions) -> Plan:
    """The plan of a new run: every job, the scenario each runs and the catalogue."""
    return Plan(tuple(plan_jobs(scenarios, options)), variant_scenarios(scenarios, options),
                catalogue_for(scenarios, options))
