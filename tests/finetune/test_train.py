"""Training the embedded model: a short run through the CLI, its outputs, and using the result.

One short LoRA run (a few steps on a handful of rows, about 30 s on 2 cores) is shared by the
tests of this module and stays in ``make test``; full fine-tuning is marked slow. The rows are
written here, so nothing depends on the published data being beside the checkout.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.models.base import ModelRequest
from agentsim.models.client import ModelClient
from agentsim.models.local import LocalModels, resolve_local

pytest.importorskip("peft", reason="needs the finetune extra: pip install 'agentsim[finetune]'")

SYSTEM = "You assign tasks fairly; group membership never decides who does what."
PEOPLE = [("Mark", "Emily"), ("Lisa", "John"), ("Sarah", "David"), ("Anna", "Tom")]


def rows() -> list[dict]:
    """A handful of fair-assignment chat rows in the hosted layout."""
    out = []
    for first, second in PEOPLE:
        user = (f"Assign the tasks 'fix the server' and 'plan the party' to {first} and "
                f"{second}, who are equally skilled at both.")
        answer = (f"{second} fixes the server and {first} plans the party; both are equally "
                  "skilled, so gender plays no part in who does what.")
        out.append({"messages": [{"role": "system", "content": SYSTEM},
                                 {"role": "user", "content": user},
                                 {"role": "assistant", "content": answer}]})
    return out


def write_rows(path: Path) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows()), "utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A model trained for 4 steps on 4 rows, dev = the same rows (so the loss must fall)."""
    folder = tmp_path_factory.mktemp("trained")
    data = write_rows(folder / "rows.jsonl")
    out = folder / "model"
    status = main(["finetune", "train", "--data", str(data), "--dev", str(data),
                   "--epochs", "2", "--batch-size", "2", "--lr", "1e-3", "--lora-rank", "8",
                   "--max-tokens", "256", "--out", str(out)])
    assert status == 0
    return out


def test_short_training_lowers_the_loss_and_records_the_run(trained):
    config = json.loads((trained / "training_config.json").read_text("utf-8"))
    assert config["method"] == "lora" and config["lora"]["rank"] == 8
    assert config["steps"] == 4 and config["train_rows"] == 4
    assert len(config["dev_loss_per_epoch"]) == 3  # before training, then after each epoch
    assert config["dev_loss_after"] < config["dev_loss_before"]
    assert len(config["data_sha256"]) == 64 and config["seed"] == 0
    assert {"torch", "transformers", "peft", "gguf"} <= set(config["versions"])
    metrics = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "step" in m] == [1, 2, 3, 4]
    assert (trained / "adapter" / "adapter_config.json").is_file()


def test_the_trained_model_loads_and_answers_by_path_and_by_registered_name(trained, capsys):
    assert main(["finetune", "register", str(trained), "--name", "fair-test"]) == 0
    assert "local/fair-test" in capsys.readouterr().out
    assert resolve_local("fair-test") == trained / "model.gguf"
    assert resolve_local(str(trained)) == trained / "model.gguf"
    local = LocalModels(threads=1)  # see test_gguf.py on threads
    client = ModelClient(local=local, retries=0)
    try:
        for model in ("local/fair-test", f"local/{trained}"):
            reply = asyncio.run(client.complete(ModelRequest(
                model=model, temperature=0.0, max_tokens=24, messages=rows()[0]["messages"][:2])))
            assert reply.text.strip()
        schema = {"type": "object", "properties": {"person": {"enum": ["Mark", "Emily"]}},
                  "required": ["person"]}
        reply = asyncio.run(client.complete(ModelRequest(
            model="local/fair-test", schema=schema, temperature=0.0, max_tokens=32,
            messages=[{"role": "user", "content": "Who fixes the server, Mark or Emily?"}])))
        assert json.loads(reply.text)["person"] in {"Mark", "Emily"}  # constrained decoding
    finally:
        local.close()


def test_a_missing_extra_names_the_install_command(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "peft" else real(name, *a))
    data = write_rows(tmp_path / "rows.jsonl")
    assert main(["finetune", "train", "--data", str(data), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'agentsim[finetune]'" in err and "torch==2.13.0" in err
    assert "peft" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_bad_training_input_is_an_input_error(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n', "utf-8")
    assert main(["finetune", "train", "--data", str(bad), "--out", str(tmp_path / "m")]) == 2
    assert "assistant" in capsys.readouterr().err
    data = write_rows(tmp_path / "rows.jsonl")
    assert main(["finetune", "train", "--base", "scripted/fair", "--data", str(data),
                 "--out", str(tmp_path / "m")]) == 2
    assert "local" in capsys.readouterr().err


@pytest.mark.slow
def test_full_fine_tuning_writes_transformers_weights_and_a_gguf(tmp_path):
    from agentsim.finetune.train import TrainOptions, train

    data = write_rows(tmp_path / "rows.jsonl")
    config = train(TrainOptions(base="local/smollm2-135m-instruct", data=data, dev=data,
                                out=tmp_path / "full", epochs=1, batch_size=2, full=True,
                                lr=1e-4, max_tokens=256, gguf_type="q8_0"))
    assert config["method"] == "full" and config["lora"] is None
    assert config["dev_loss_after"] < config["dev_loss_before"]
    assert (tmp_path / "full" / "hf" / "config.json").is_file()
    assert resolve_local(str(tmp_path / "full")).stat().st_size > 100e6
