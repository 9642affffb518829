"""Registered local models: names under ``local/`` for models trained with ``agentsim finetune``.

A trained model is a folder holding ``model.gguf`` (what llama.cpp runs) beside its
``training_config.json``. ``agentsim finetune register DIR --name NAME`` records the folder under
NAME in ``models.json`` inside agentsim's home folder — ``$AGENTSIM_HOME``, else
``$XDG_DATA_HOME/agentsim``, else ``~/.local/share/agentsim``. The home is a data folder, not a
cache: clearing ``~/.cache/agentsim`` must not forget what was registered. The registry only maps
names to folders; nothing is copied, so moving a folder means registering it again.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from agentsim.errors import InputError

HOME_ENV = "AGENTSIM_HOME"
MODEL_FILE = "model.gguf"
TRAINING_CONFIG = "training_config.json"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def agentsim_home() -> Path:
    """agentsim's data folder (see the module docstring for how it is chosen)."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "agentsim"


def registry_path() -> Path:
    """The file that maps registered names to model folders."""
    return agentsim_home() / "models.json"


def registered_models() -> dict[str, Path]:
    """Every registered name and its folder (an unreadable registry is an error, not empty:
    silently forgetting models would route runs to the wrong weights)."""
    path = registry_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read the model registry ({error})", source=path) from None
    return {name: Path(folder) for name, folder in data.get("models", {}).items()}


def model_file(folder: Path) -> Path | None:
    """The GGUF file of a trained-model folder, or None when ``folder`` is not one."""
    candidate = Path(folder) / MODEL_FILE
    return candidate if candidate.is_file() else None


def register_model(folder: Path, name: str, reserved: tuple[str, ...] = ()) -> Path:
    """Record ``folder`` (a trained-model folder) as ``local/<name>``; return the registry file.

    Registering a name again points it at the new folder. ``reserved`` are names that cannot be
    taken (the built-in models).
    """
    folder = Path(folder).expanduser().resolve()
    if model_file(folder) is None:
        raise InputError(f"not a trained model folder (no {MODEL_FILE}; train one with "
                         "'agentsim finetune train')", source=folder)
    if not NAME_PATTERN.fullmatch(name):
        raise InputError("must be letters, digits, '.', '_' or '-' (at most 64, no '/')",
                         source="--name", field=name)
    if name in reserved:
        raise InputError(f"{name!r} is a built-in model", source="--name")
    models = {key: str(value) for key, value in registered_models().items()}
    models[name] = str(folder)
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # atomic: concurrent runs read it
    tmp.write_text(json.dumps({"models": dict(sorted(models.items()))}, indent=2) + "\n",
                   "utf-8")
    os.replace(tmp, path)
    return path
