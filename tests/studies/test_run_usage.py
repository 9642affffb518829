"""Prices of model names (agentsim.models.prices) and the ``usage`` a judging pass records:
calls, cache hits, tokens and cost per model, judges' calls apart. Offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.models.endpoints import Endpoint, EndpointResolver, ModelsConfig
from agentsim.models.prices import Prices, price_of

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"


def test_prices_come_from_the_config_then_in_process_local_servers_and_litellm():
    config = ModelsConfig.model_validate({"models": {
        "mine": {"model": "openai/gpt-4o-mini", "input_cost_per_token": 0.5},
        "server": {"model": "openai/smollm2", "api_base": "http://127.0.0.1:8080/v1"},
        "remote": {"model": "openai/smollm2", "api_base": "https://llm.example.org/v1"}}})
    prices = Prices(EndpointResolver(config))
    assert prices("mine").prompt == 0.5 and prices("mine").completion == 0.0
    assert prices("mine").source == "config"
    assert prices("scripted/fair").source == "in-process" and prices("scripted/fair").cost(
        1000, 1000) == 0.0
    assert prices("local/smollm2-135m-instruct").prompt == 0.0
    assert prices("server").source == "local server"
    assert prices("remote") is None  # a server elsewhere, a model litellm does not price
    assert prices("hosted_vllm/foo") is None
    mini = price_of(Endpoint(name="openai/gpt-4o-mini", model="openai/gpt-4o-mini"))
    from agentsim.models import _litellm

    known = _litellm.litellm.model_cost["gpt-4o-mini"]
    assert (mini.prompt, mini.completion) == (known["input_cost_per_token"],
                                              known["output_cost_per_token"])
    assert mini.source == "litellm" and mini.prompt > 0
    assert prices.cost("openai/gpt-4o-mini", 10, 10, cached=True) == 0.0
    assert prices.cost("hosted_vllm/foo", 10, 10) is None


def test_usage_counts_conversations_and_judges_calls_apart(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(SCENARIO), "--model", "scripted/fair", "--replicates", "2",
                 "--rounds", "1", "--no-cache", "--out", str(out)]) == 0
    assert "scripted/fair: " in capsys.readouterr().out  # one line per model
    judge = "scripted/judge?score=2"
    assert main(["judge", str(out), "--judges", "rubric", "--role", f"judge={judge}",
                 "--json"]) == 0
    capsys.readouterr()
    results = json.loads((out / "results.json").read_text("utf-8"))
    log = [json.loads(line) for line in (out / "events.jsonl").read_text("utf-8").splitlines()]
    own = [e for e in log if e["type"] == "model_call" and e["role"] != "judge"]
    judged = [e for e in log if e["type"] == "model_call" and e["role"] == "judge"]
    usage = results["usage"]
    assert usage["models"]["scripted/fair"]["calls"] == len(own) > 0
    assert usage["models"]["scripted/fair"]["completion_tokens"] == sum(
        e["completion_tokens"] for e in own)
    assert usage["judges"][judge]["calls"] == len(judged) > 0
    assert usage["total"]["calls"] == len(own) + len(judged)
    assert usage["total"]["cost"] == 0.0 and usage["unpriced"] == []


def test_cached_calls_are_counted_and_cost_nothing(tmp_path):
    cache = tmp_path / "cache"
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  scripted/fair:\n    input_cost_per_token: 0.001\n",
                      encoding="utf-8")
    args = ["run", str(SCENARIO), "--model", "scripted/fair", "--rounds", "1",
            "--models-config", str(config), "--cache-dir", str(cache), "--json"]
    assert main([*args, "--out", str(tmp_path / "first")]) == 0
    assert main([*args, "--out", str(tmp_path / "second")]) == 0
    first = json.loads((tmp_path / "first" / "results.json").read_text("utf-8"))["usage"]
    second = json.loads((tmp_path / "second" / "results.json").read_text("utf-8"))["usage"]
    row = second["models"]["scripted/fair"]
    assert row["cached_calls"] == row["calls"] == first["models"]["scripted/fair"]["calls"]
    assert first["total"]["cost"] == pytest.approx(
        first["total"]["prompt_tokens"] * 0.001, abs=1e-6) and first["total"]["cost"] > 0
    assert second["total"]["cost"] == 0.0


def test_a_models_config_name_of_a_scripted_model_gets_its_facts(tmp_path):
    # The provider's conversation facts follow the model a name routes to: an alias of a
    # scripted model in a models config plays it exactly as the scripted name does.
    import json

    from agentsim.cli.main import main

    config = tmp_path / "models.yaml"
    config.write_text('models:\n  pricey: {model: "scripted/stereotyped?rate=0.5", '
                      'input_cost_per_token: 0.001, output_cost_per_token: 0.002}\n')
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "workplace" / \
        "office-product-launch.yaml"
    outs = {}
    for name, extra in (("alias", ["--model", "pricey", "--models-config", str(config)]),
                        ("plain", ["--model", "scripted/stereotyped?rate=0.5"])):
        outs[name] = tmp_path / name
        assert main(["run", str(scenario), *extra, "--no-cache", "--out", str(outs[name])]) == 0
    results = {k: json.loads((v / "results.json").read_text()) for k, v in outs.items()}
    assert results["alias"]["metrics"]["bias_first"] == results["plain"]["metrics"]["bias_first"]
    usage = results["alias"]["usage"]["models"]["pricey"]
    assert usage["cost"] == pytest.approx(usage["prompt_tokens"] * 0.001
                                          + usage["completion_tokens"] * 0.002)


def test_judging_again_updates_the_manifests_usage(tmp_path):
    import json

    from agentsim.cli.main import main

    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "workplace" / \
        "office-product-launch.yaml"
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--model", "scripted/fair", "--no-cache",
                 "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.pop("usage")
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["judge", str(out)]) == 0
    usage = json.loads((out / "manifest.json").read_text())["usage"]
    assert usage == json.loads((out / "results.json").read_text())["usage"]
    assert usage["models"]["scripted/fair"]["calls"] > 0
