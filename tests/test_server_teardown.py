"""The servers the tests start die with the test process: a killed test session leaves no
llama.cpp server behind holding a port and a core."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has died; its new parent has not reaped it


def test_a_server_started_by_the_tests_dies_with_the_test_process():
    script = ("import subprocess, sys, time\n"
              f"sys.path.insert(0, {str(REPO)!r})\n"
              "from tests.support.llama_server import die_with_parent\n"
              "server = subprocess.Popen(['sleep', '120'], preexec_fn=die_with_parent)\n"
              "print(server.pid, flush=True)\n"
              "time.sleep(120)\n")
    tests = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    server = int(tests.stdout.readline())
    assert _alive(server)
    tests.kill()  # SIGKILL: no teardown runs
    tests.wait()
    deadline = time.monotonic() + 10
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server)
