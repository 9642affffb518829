"""The options of ``agentsim run`` and ``agentsim compare``: their argparse types, with the
API's ranges and choices (:mod:`agentsim.api.settings`), their definitions, and the keyword
arguments of :func:`agentsim.api.run` they become. Part of the command line
(see :mod:`agentsim.cli.main`).
"""

from __future__ import annotations

import argparse
from typing import Any

from agentsim.api import MODES, NUMBERS, PER_MODEL, SETTINGS
from agentsim.cli.checks import number as _number
from agentsim.cli.checks import path as _path

__all__ = ["add_endpoint_options", "add_run_options", "role", "run_options", "run_settings"]


def role(text: str) -> tuple[str, str]:
    """The argparse type of ``NAME=MODEL`` (``--role``; ``--gender NAME=VALUE``)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=MODEL, got {text!r}")
    name, model = text.split("=", 1)
    if not name.strip() or not model.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=MODEL with both given, got {text!r}")
    return name.strip(), model.strip()


def _per_model(kind: Any, low: float | None = None, high: float | None = None,
               url: bool = False) -> Any:
    """An argparse type for ``VALUE`` (every model) or ``MODEL=VALUE`` (one model)."""

    def parse(text: str) -> tuple[str, Any]:
        if url:
            head, sep, tail = text.partition("=")
            model, raw = (head, tail) if sep and "://" not in head else ("*", text)
        else:
            model, sep, raw = text.rpartition("=")
            model = model if sep else "*"
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected [MODEL=]VALUE, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
            raise argparse.ArgumentTypeError(f"{raw!r} is out of range: must be {bounds}")
        return model.strip() or "*", value

    return parse


def _mode(text: str) -> str:
    if text not in MODES:
        raise ValueError(text)
    return text


def _bounded(option: str) -> Any:
    """The argparse type of a numeric run option, with the API's range (agentsim.api.NUMBERS)."""
    return _number(*NUMBERS[option])


def _model_bounded(option: str) -> Any:
    """The argparse type of a per-model numeric option, with the API's range."""
    kind, low, high = PER_MODEL[option]
    return _per_model(kind, low=low, high=high)


def add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    """Where models are served and how they are called (``run``, ``compare``)."""
    group = parser.add_argument_group(
        "model servers", "VALUE applies to every model, MODEL=VALUE to one (a --model/--role "
        "name or a models-config name)")
    group.add_argument("--models-config", type=_path, metavar="FILE",
                       help="YAML file naming models: provider, api_base, key variable, "
                       "structured-output mode, rate limits, timeout (see README)")
    group.add_argument("--router-config", type=_path, metavar="FILE",
                       help="YAML file with a litellm Router model_list: one model name "
                       "balanced over several servers")
    group.add_argument("--api-base", action="append", default=[], metavar="[MODEL=]URL",
                       type=_per_model(str, url=True), help="base URL of the server")
    group.add_argument("--structured", action="append", default=[], metavar="[MODEL=]MODE",
                       type=_per_model(_mode), help="how structured output is requested: auto "
                       "(probe once; default), json_schema, json_object (llama.cpp's server), "
                       "vllm, ollama or text")
    group.add_argument("--rpm", action="append", default=[], metavar="[MODEL=]N",
                       type=_model_bounded("rpm"), help="requests per minute")
    group.add_argument("--tpm", action="append", default=[], metavar="[MODEL=]N",
                       type=_model_bounded("tpm"), help="tokens per minute")
    group.add_argument("--max-in-flight", action="append", default=[], metavar="[MODEL=]N",
                       type=_model_bounded("max_in_flight"), help="model calls in flight at once")
    group.add_argument("--timeout", action="append", default=[], metavar="[MODEL=]SECONDS",
                       type=_model_bounded("timeout"), help="seconds one call may take "
                       "(default 120)")
    group.add_argument("--retries", action="append", default=[], metavar="[MODEL=]N",
                       type=_model_bounded("retries"), help="retries of a transient "
                       "error: rate limit, timeout, 5xx, lost connection (default 8, about 90 s "
                       "of backoff)")
    group.add_argument("--no-probe", action="store_true",
                       help="do not probe servers for their structured-output mode")
    parser.add_argument("--max-failures", metavar="N|P%",
                        help="stop starting conversations once more than N (or P%% of the "
                        "planned) have failed; exit status 3, resumable")
    parser.add_argument("--max-cost", type=_number(*NUMBERS["max_cost"]), metavar="USD",
                        help="stop starting conversations once the spend the log records "
                        "(litellm's prices) reaches USD; exit status 3, resumable")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of a run, shared by ``run`` and ``compare`` (see :func:`run_settings`)."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    parser.add_argument("--no-cache", action="store_true",
                        help="do not read or write the cache of model calls")
    parser.add_argument("--cache-dir", type=_path,
                        help="cache folder (default $AGENTSIM_CACHE_DIR or ~/.cache/agentsim/"
                        "calls)")
    parser.add_argument("--mitigation-arg", action="append", default=[],
                        metavar="NAME:OPTION=VALUE",
                        help="a mitigation's option, e.g. debias_prompt:file=my_prompt.txt, "
                        "anonymise:names=false")
    parser.add_argument("--tag", action="append", default=[],
                        help="run only scenarios carrying this tag (repeatable: any of them)")
    parser.add_argument("--model", default=None,
                        help="model of every agent (default local/smollm2-135m-instruct)")
    parser.add_argument("--role", action="append", type=role, default=[], metavar="NAME=MODEL",
                        help="model of one role (agent, single, judge, moderator, finetuned) or "
                        "persona id")
    parser.add_argument("--setting", choices=SETTINGS)
    parser.add_argument("--rounds", type=_bounded("rounds"),
                        help=f"discussion rounds, 0-{NUMBERS['rounds'][2]} (default: from the "
                        "file)")
    parser.add_argument("--replicates", type=_bounded("replicates"), default=1,
                        help="conversations per scenario")
    parser.add_argument("--seed", type=_bounded("seed"), default=0, help="run seed (default 0)")
    parser.add_argument("--concurrency", type=_bounded("concurrency"),
                        help="conversations in flight (default 1 with a local model, else 8)")
    parser.add_argument("--executor", default="local", metavar="NAME",
                        help="where conversations run: local (one event loop, default), "
                        "processes (one worker process per core) or ray (Ray workers; "
                        "pip install 'agentsim[ray]')")
    parser.add_argument("--ray-address", metavar="ADDRESS",
                        help="the Ray --executor ray joins: auto (the one running here) or "
                        "ray://host:10001 (a cluster); default: start one on this machine")
    parser.add_argument("--temperature", type=_bounded("temperature"),
                        help="sampling temperature, 0-2 (default: the preset's, else 0.7)")
    parser.add_argument("--max-tokens", type=_bounded("max_tokens"),
                        help="token limit of each answer (default: the preset's, else 200)")
    parser.add_argument("--preset", metavar="NAME",
                        help="run every scenario as a published protocol: borah2024 (its "
                        "settings and prompts; a scenario's own settings win)")
    parser.add_argument("--prompts", type=_path, metavar="FILE",
                        help="a prompt file over the protocol's prompts (copy "
                        "agentsim/scenario/prompts/discussion.yaml and edit it)")
    add_endpoint_options(parser)
    parser.add_argument("--out", type=_path, help="run folder (default runs/<run_id>)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    clinical = parser.add_argument_group("clinical consultations")
    clinical.add_argument("--max-turns", type=_bounded("max_turns"),
                          help=f"doctor turn budget, 1-{NUMBERS['max_turns'][2]} (default 20)")
    clinical.add_argument("--bias", action="append", default=[], metavar="ROLE:NAME[+ROLE:NAME]",
                          help="inject a bias from the catalogue, e.g. doctor:race (repeatable; "
                          "each is a condition run beside the unbiased one)")
    clinical.add_argument("--bias-catalogue", type=_path, metavar="FILE",
                          help="bias catalogue (default scenarios/clinical/biases.yaml)")
    clinical.add_argument("--cases", metavar="SPEC", help="case indexes of .jsonl case files, "
                          "e.g. 0-9,12")
    clinical.add_argument("--limit", type=_bounded("limit"),
                          help="first N cases of .jsonl case files")
    parser.add_argument("--vary", action="append", default=[], metavar="PERSONA.FIELD=V1,V2",
                        help="counterfactual variants, e.g. patient.race=Black,White (repeatable: "
                        "all combinations); replaces the variants the files declare")
    parser.add_argument("--probes", action="store_true",
                        help="after each discussion round, ask every agent privately for its "
                        "current decision (per-round trajectories; agents x rounds extra calls)")
    parser.add_argument("--no-variants", action="store_true",
                        help="run only the scenarios as written, not their declared variants")


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The options :func:`add_run_options` defined, as keyword arguments of
    :func:`agentsim.api.run` and :func:`agentsim.api.compare`."""
    from dataclasses import fields

    from agentsim.api import RunSettings

    # --role NAME=MODEL (repeatable) is the API's roles={NAME: MODEL}; the others share names.
    return {f.name: getattr(args, f.name) for f in fields(RunSettings) if f.name != "roles"} | {
        "roles": dict(args.role)}


def run_options(args: argparse.Namespace, arms: tuple[str, ...]) -> Any:
    """The runner's RunOptions of these options with these ``arms``, as the API builds them."""
    from agentsim.api import settings_of

    return settings_of(run_settings(args)).run_options(arms)
