"""Registered local models: names, folders, errors, and isolation from the user's registry.

No training here: a "trained-model folder" is any folder with a ``model.gguf``; a symbolic link
to the embedded model's file stands in for one, so these tests need neither torch nor time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.errors import InputError, ModelNameError
from agentsim.models.local import resolve_local
from agentsim.models.registered import agentsim_home, register_model, registered_models

BASE = "smollm2-135m-instruct"


@pytest.fixture
def model_dir(tmp_path) -> Path:
    folder = tmp_path / "trained"
    folder.mkdir()
    (folder / "model.gguf").symlink_to(resolve_local(BASE))
    return folder


def test_each_test_has_its_own_home(tmp_path_factory):
    # conftest's autouse fixture points AGENTSIM_HOME at a fresh folder: no test can read or
    # write the registry of the person running the tests.
    assert agentsim_home().is_relative_to(tmp_path_factory.getbasetemp())
    assert registered_models() == {}


def test_register_makes_the_folder_a_local_name(model_dir, capsys):
    assert main(["finetune", "register", str(model_dir), "--name", "fair", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "local/fair" and Path(shown["registry"]).is_file()
    assert resolve_local("fair") == model_dir / "model.gguf"
    assert registered_models() == {"fair": model_dir.resolve()}
    # Registering the name again moves it; other names stay.
    other = model_dir.parent / "other"
    other.mkdir()
    (other / "model.gguf").symlink_to(resolve_local(BASE))
    register_model(other, "fair")
    register_model(model_dir, "first")
    assert registered_models() == {"fair": other.resolve(), "first": model_dir.resolve()}


def test_a_folder_path_resolves_without_registering(model_dir):
    assert resolve_local(str(model_dir)) == model_dir / "model.gguf"


def test_unknown_names_list_what_is_registered(model_dir):
    register_model(model_dir, "fair")
    with pytest.raises(ModelNameError, match="registered: fair"):
        resolve_local("unfair")


def test_a_moved_folder_says_register_again(model_dir):
    register_model(model_dir, "fair")
    (model_dir / "model.gguf").unlink()
    with pytest.raises(ModelNameError, match="register it again"):
        resolve_local("fair")


@pytest.mark.parametrize("name, message", [("a/b", "no '/'"), ("", "letters"),
                                           (BASE, "built-in")])
def test_bad_names_are_refused(model_dir, capsys, name, message):
    assert main(["finetune", "register", str(model_dir), "--name", name]) == 2
    assert message in capsys.readouterr().err


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a trained model folder"):
        register_model(tmp_path, "fair")


def test_an_unreadable_registry_is_an_error_not_an_empty_one(model_dir):
    register_model(model_dir, "fair")
    (agentsim_home() / "models.json").write_text("{not json", "utf-8")
    with pytest.raises(InputError, match="model registry"):
        resolve_local("fair")
