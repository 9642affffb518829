"""The options of a run as Python values: :class:`RunSettings`, the ranges and choices the
command line's parser shares (:data:`NUMBERS`, :data:`PER_MODEL`, :data:`MODES`,
:data:`SETTINGS`), and the checks that refuse what the command line refuses, each an
:class:`~agentsim.errors.InputError` naming the option. Part of :mod:`agentsim.api`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from agentsim.errors import InputError

__all__ = ["MODES", "NUMBERS", "PATHS", "PER_MODEL", "SETTINGS", "RunSettings", "check_number",
           "flag", "parse_models", "parse_settings", "plugin_options", "settings_of", "strings"]

# Ranges of the numeric options, (type, low, high) inclusive; the command line's parser takes
# them from here. Rounds and doctor turns: what the scenario schema accepts.
NUMBERS: dict[str, tuple[type, float | None, float | None]] = {
    "rounds": (int, 0, 20), "replicates": (int, 1, 10_000), "seed": (int, 0, 2**63 - 1),
    "concurrency": (int, 1, 1_024), "temperature": (float, 0, 2),
    "max_tokens": (int, 1, 1_000_000), "max_turns": (int, 1, 100), "limit": (int, 1, None),
    "from_turn": (int, 0, None), "max_cost": (float, 0, None),
}
# Options given per model ('*': every model); api_base takes a URL, structured one of MODES.
PER_MODEL: dict[str, tuple[type, float | None, float | None]] = {
    "api_base": (str, None, None), "structured": (str, None, None), "rpm": (float, 0.001, None),
    "tpm": (float, 1, None), "max_in_flight": (int, 1, None), "timeout": (float, 0.001, None),
    "retries": (int, 0, 100),
}
MODES = ("auto", "json_schema", "json_object", "vllm", "ollama", "text")
SETTINGS = ("interaction", "no-interaction", "goal")
PATHS = ("out", "cache_dir", "models_config", "router_config", "bias_catalogue", "prompts")


def flag(option: str) -> str:
    """The command-line spelling of an option: ``max_tokens`` → ``--max-tokens``."""
    return "--" + option.replace("_", "-")


def check_number(option: str, value: Any) -> None:
    """Refuse a number of the wrong type or out of :data:`NUMBERS`' (or :data:`PER_MODEL`'s)
    range for ``option``; None (not given) passes."""
    if value is None:
        return
    kind, low, high = NUMBERS.get(option) or PER_MODEL[option]
    whole = kind is int
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float) \
            or value != value:  # NaN
        raise InputError(f"expected {'a whole number' if whole else 'a number'}, got {value!r}",
                         source=flag(option))
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise InputError(f"{value!r} is out of range: must be {bounds}", source=flag(option))


def strings(value: str | Sequence[str] | None, option: str) -> list[str]:
    """A repeatable option as a list of strings (one string is a list of one)."""
    items = [] if value is None else [value] if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str):
            raise InputError(f"expected text, got {item!r}", source=option)
    return items


def parse_models(models: str | Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``--models``: ``a=MODEL,b=MODEL`` (or a list, or a mapping) as name → model; a model
    given without a name is named after it (letters and digits kept, lower-case)."""
    from agentsim.scenario.schema_base import check_id

    if models is None:
        return {}
    if isinstance(models, Mapping):
        items = [(str(k), str(v)) for k, v in models.items()]
    else:
        parts = models.split(",") if isinstance(models, str) else list(models)
        items = []
        for part in (p.strip() for p in parts if p.strip()):
            name, sep, model = part.partition("=")
            if sep and "/" not in name and "?" not in name:
                items.append((name.strip(), model.strip()))
            else:
                items.append(("", part))
    out: dict[str, str] = {}
    for name, model in items:
        if not model:
            raise InputError(f"expected [NAME=]MODEL, got {name}={model!r}", source="--models")
        label = name or _label_of(model, out)
        try:
            check_id(label, "model name")
        except ValueError as error:
            raise InputError(str(error), source="--models") from None
        if label in out:
            raise InputError(f"model name {label!r} given twice", source="--models")
        out[label] = model
    return out


def _label_of(model: str, taken: Mapping[str, str]) -> str:
    text = "".join(c if c.isalnum() else "-" for c in model.lower()).strip("-")
    base = "-".join(part for part in text.split("-") if part)[:40] or "model"
    label, counter = base, 2
    while label in taken:
        label, counter = f"{base}-{counter}", counter + 1
    return label


def parse_settings(settings: str | Sequence[str] | None) -> list[str]:
    """``--settings interaction,goal`` (or a list) as the settings, each checked."""
    if settings is None:
        return []
    items = [p.strip() for p in (settings.split(",") if isinstance(settings, str)
                                 else settings) if str(p).strip()]
    for item in items:
        if item not in SETTINGS:
            raise InputError(f"invalid choice {item!r} (choose from {', '.join(SETTINGS)})",
                             source="--settings")
    repeated = sorted({i for i in items if items.count(i) > 1})
    if repeated:
        raise InputError(f"setting(s) given twice: {', '.join(repeated)}", source="--settings")
    return items


def plugin_options(value: Any, option: str) -> dict[str, dict[str, Any]]:
    """``PLUGIN:NAME=VALUE`` strings (as on the command line) or {plugin: {name: value}}."""
    if isinstance(value, Mapping):
        return {str(name): dict(opts) for name, opts in value.items()}
    from agentsim.runs.judging import parse_judge_args

    return parse_judge_args(strings(value, option), source=option)


@dataclass(frozen=True)
class RunSettings:
    """The options of ``agentsim run`` and ``agentsim compare``, as Python values (see
    :mod:`agentsim.api`); :meth:`check` refuses what the command line refuses."""

    model: str | None = None
    """Model of every agent (default local/smollm2-135m-instruct)."""
    roles: Mapping[str, str] = field(default_factory=dict)
    """Role or persona id → model (agent, single, judge, moderator, doctor, ...)."""
    setting: str | None = None
    """interaction, no-interaction or goal (default: the file's)."""
    rounds: int | None = None
    """Discussion rounds, 0-20 (default: the file's)."""
    replicates: int = 1
    """Conversations per scenario."""
    seed: int = 0
    """Run seed."""
    concurrency: int | None = None
    """Conversations in flight (default 1 with a local model, else 8)."""
    executor: str = "local"
    """Where conversations run: local (one event loop), processes (every core) or ray."""
    ray_address: str | None = None
    """The Ray cluster of --executor ray (None: a private Ray on this machine; 'auto')."""
    temperature: float | None = None
    """Sampling temperature, 0-2 (None: the protocol's or its preset's, else 0.7)."""
    max_tokens: int | None = None
    """Token limit of each answer."""
    out: str | Path | None = None
    """Run folder (default runs/<run_id>)."""
    mitigation_arg: Sequence[str] | Mapping[str, Mapping[str, Any]] = ()
    """Mitigation options: NAME:OPTION=VALUE strings or {mitigation: {option: value}}."""
    tag: Sequence[str] = ()
    """Run only scenarios carrying any of these tags."""
    no_cache: bool = False
    """Neither read nor write the cache of model calls."""
    cache_dir: str | Path | None = None
    """Cache folder (default $AGENTSIM_CACHE_DIR or ~/.cache/agentsim/calls)."""
    models_config: str | Path | None = None
    """YAML file naming models: provider, api_base, key variable, structured mode, limits."""
    router_config: str | Path | None = None
    """YAML file with a litellm Router model_list."""
    api_base: Any = None
    """Base URL of the server, for every model or {model: URL}."""
    structured: Any = None
    """How structured output is requested (one of MODES), for every model or per model."""
    rpm: Any = None
    """Requests per minute, for every model or per model."""
    tpm: Any = None
    """Tokens per minute, for every model or per model."""
    max_in_flight: Any = None
    """Model calls in flight at once, for every model or per model."""
    timeout: Any = None
    """Seconds one call may take, for every model or per model."""
    retries: Any = None
    """Retries of a transient error, for every model or per model."""
    no_probe: bool = False
    """Do not probe servers for their structured-output mode."""
    max_failures: str | int | None = None
    """Stop starting conversations once more than N (or 'P%') have failed."""
    max_turns: int | None = None
    """Doctor turn budget of consultations, 1-100."""
    bias: Sequence[str] = ()
    """Bias conditions from the catalogue (ROLE:NAME[+ROLE:NAME]), each beside the unbiased."""
    bias_catalogue: str | Path | None = None
    """Bias catalogue file (default: the shipped one)."""
    preset: str | None = None
    """A published protocol every scenario runs as (e.g. 'borah2024'); see presets."""
    prompts: str | Path | None = None
    """A prompt file over the protocol's prompts (copy the shipped one and edit it)."""
    cases: str | None = None
    """Case indexes of .jsonl case files, e.g. '0-9,12'."""
    limit: int | None = None
    """First N cases of .jsonl case files."""
    vary: Sequence[str] = ()
    """Counterfactual variants PERSONA.FIELD=V1,V2 (all combinations); replace the files'."""
    probes: bool = False
    """After each discussion round, ask every agent privately for its current decision."""
    no_variants: bool = False
    """Run only the scenarios as written, not their declared variants."""
    max_cost: float | None = None
    """Stop starting conversations once the spend the log records reaches this many US
    dollars (resumable)."""

    def per_model(self, option: str) -> dict[str, Any]:
        """A per-model option as model → value ('*': every model)."""
        value = getattr(self, option)
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, list | tuple) and all(isinstance(v, tuple) for v in value):
            return dict(value)  # the command line's (model, value) pairs, in order
        return {"*": value}

    def check(self) -> None:
        """Refuse values the command line refuses (types, ranges, choices, empty values, keys
        in values), each an InputError naming the option; nothing is read or written."""
        from agentsim.models.client import key_problem

        for option in (f.name for f in fields(self) if f.name in NUMBERS):
            check_number(option, getattr(self, option))
        if self.setting is not None and self.setting not in SETTINGS:
            raise InputError(f"invalid choice {self.setting!r} (choose from "
                             f"{', '.join(SETTINGS)})", source="--setting")
        for option in PER_MODEL:
            for model, value in self.per_model(option).items():
                if PER_MODEL[option][0] is not str:
                    check_number(option, value)
                elif option == "structured" and value not in MODES:
                    raise InputError(f"invalid choice {value!r} (choose from "
                                     f"{', '.join(MODES)})", source=flag(option))
                elif not isinstance(value, str) or not value.strip() or not model:
                    raise InputError(f"expected [MODEL=]VALUE, got {model}={value!r}",
                                     source=flag(option))
        for name, model in dict(self.roles).items():
            if not (isinstance(name, str) and isinstance(model, str) and name.strip()
                    and model.strip()):
                raise InputError(f"expected NAME=MODEL with both given, got {name!r}="
                                 f"{model!r}", source="--role")
        for option in PATHS:
            if getattr(self, option) is not None and not str(getattr(self, option)).strip():
                raise InputError("expected a path, got an empty string", source=flag(option))
        for option, text in self._texts():
            problem = key_problem(text)
            if problem is not None:  # the message names the option, never the value
                raise InputError(f"this value holds what looks like a key ({problem}); a key "
                                 "in an option would be written to the run's manifest and log. "
                                 "Give keys only through environment variables or a models "
                                 "config's api_key_env / api_key_file", source=flag(option))

    def _texts(self) -> list[tuple[str, str]]:
        found = []
        for item in fields(self):
            value = getattr(self, item.name)
            values = (value.items() if isinstance(value, Mapping)
                      else value if isinstance(value, list | tuple) else [value])
            for part in values:
                for text in part if isinstance(part, tuple) else (part,):
                    if isinstance(text, str | Path):
                        found.append((item.name, str(text)))
        return found

    def applicable(self, scenarios: Sequence[tuple[Path, Any]]) -> list[str]:
        """Refuse options that apply to none of the scenarios being run; return warnings for
        options that apply to some of them only (recorded in the manifest)."""
        from agentsim.scenario.loader import CASE_FILE_SUFFIXES

        from agentsim.orchestrator.kernel import plugin_for
        from agentsim.registry import REGISTRY

        warnings: list[str] = []
        total = len(scenarios)
        protocols = [s.protocol.name for _, s in scenarios]

        def only(option: str, given: bool) -> None:
            # Each protocol says which run options it takes (ConversationProtocol.takes).
            if not given:
                return
            name = option.removeprefix("--").replace("-", "_")
            count = sum(1 for _, s in scenarios
                        if plugin_for(s.protocol.name).takes(name, s, self.setting))
            kind = " and ".join(n for n in REGISTRY.names("protocol")
                                if name in plugin_for(n).options)
            if count == 0:
                raise InputError(f"applies to {kind} scenarios only, and none is being run "
                                 f"({total} scenario(s): {', '.join(sorted(set(protocols)))}); "
                                 "drop the option", source=option)
            if count < total:
                verb = "is" if count == 1 else "are"
                warnings.append(f"{option} applies to {kind} scenarios only: {count} of the "
                                f"{total} scenarios {verb} {kind}; the others run without it")

        only("--bias", bool(self.bias))
        only("--max-turns", self.max_turns is not None)
        only("--bias-catalogue", self.bias_catalogue is not None)
        if self.bias_catalogue is not None and not self.bias and not any(
                getattr(s.protocol, "biases", ()) for _, s in scenarios):
            raise InputError("no bias condition runs (no --bias, and no scenario lists "
                             "protocol.biases), so the catalogue would not be read; add --bias "
                             "or drop the option", source="--bias-catalogue")
        only("--setting", self.setting is not None)
        only("--rounds", self.rounds is not None)
        if (self.cases or self.limit is not None) and not any(
                Path(p).suffix in CASE_FILE_SUFFIXES for p, _ in scenarios):
            raise InputError("selects cases of .jsonl case files, and no .jsonl file is being "
                             "run; drop the option (YAML scenarios are chosen by path or --tag)",
                             source="--cases" if self.cases else "--limit")
        if self.vary and self.no_variants:
            raise InputError("--vary replaces the declared variants already; give one of "
                             "--vary and --no-variants", source="--no-variants")
        return warnings

    def run_options(self, arms: tuple[str, ...]) -> Any:
        """The runner's :class:`~agentsim.runs.runner.RunOptions` with these ``arms``."""
        from agentsim.models.endpoints import load_models_config, load_router_config
        from agentsim.models.names import DEFAULT_MODEL
        from agentsim.runs.runner import RunOptions
        from agentsim.scenario.variants import BASE_VARIANT, parse_vary

        endpoints: dict[str, dict[str, Any]] = {}
        for option in PER_MODEL:
            for model, value in self.per_model(option).items():
                endpoints.setdefault(model, {})[option] = value
        vary = strings(self.vary, "--vary")
        return RunOptions(
            model=DEFAULT_MODEL if self.model is None else self.model, roles=dict(self.roles),
            setting=self.setting, rounds=self.rounds, replicates=self.replicates,
            seed=self.seed, concurrency=self.concurrency, temperature=self.temperature,
            max_tokens=self.max_tokens, executor=self.executor, ray_address=self.ray_address,
            models_config=(load_models_config(self.models_config).model_dump()
                           if self.models_config else None),
            router_list=load_router_config(self.router_config) if self.router_config else None,
            endpoint_options=endpoints,
            max_failures=None if self.max_failures is None else str(self.max_failures),
            probe=not self.no_probe, biases=tuple(strings(self.bias, "--bias")),
            variants=(tuple(parse_vary(vary)) if vary
                      else (BASE_VARIANT,) if self.no_variants else None),
            max_turns=self.max_turns, probes=self.probes, arms=arms,
            mitigation_options=plugin_options(self.mitigation_arg, "--mitigation-arg"),
            cache=not self.no_cache, cache_dir=str(self.cache_dir) if self.cache_dir else None,
            bias_catalogue=str(self.bias_catalogue) if self.bias_catalogue else None,
            preset=self.preset, prompts=str(self.prompts) if self.prompts else None,
            max_cost=self.max_cost)


def settings_of(options: Mapping[str, Any]) -> RunSettings:
    """RunSettings from keyword arguments; an unknown name is an InputError naming it."""
    known = [f.name for f in fields(RunSettings)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} (options: "
                         f"{', '.join(known)})", source=flag(unknown[0]))
    return RunSettings(**options)
