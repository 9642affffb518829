"""Runs to report on, made once per session with the scripted model, and one headless Chromium
(Debian's /usr/bin/chromium, driven by playwright; no browser is downloaded) for every browser
test of the session.

The runs are made through the command line in-process (``agentsim.cli.main.main``), so each
also proves that ``run``, ``compare``, ``replay --from-turn`` and ``import transcript`` end with
a report in their folder where they should.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from report_page import HOSTILE, REPO

from agentsim.cli.main import main

CHROMIUM = Path("/usr/bin/chromium")
# Flags that work in a container without a display or network (and keep Chromium from
# calling home: no component updates, sync, background networking or QUIC).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
MODEL = "scripted/stereotyped?rate=0.5"


def _cli(*argv: str) -> None:
    code = main([*argv])
    assert code == 0, f"agentsim {' '.join(argv)} exited with {code}"


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    """A folder of the session's runs (the model-call cache off: runs stay independent)."""
    return tmp_path_factory.mktemp("report-runs")


@pytest.fixture(scope="session")
def plain_run(runs_root) -> Path:
    """Every shipped workplace scenario (their variants too), probes after each of 2 rounds."""
    out = runs_root / "plain"
    _cli("run", str(REPO / "scenarios" / "workplace"), "--model", MODEL, "--probes",
         "--rounds", "2", "--seed", "3", "--no-cache", "--out", str(out))
    return out


@pytest.fixture(scope="session")
def compare_run(runs_root) -> Path:
    """Three arms on the demo scenarios, paired by seed."""
    out = runs_root / "compare"
    _cli("compare", str(REPO / "scenarios" / "workplace"), "--tag", "demo", "--model", MODEL,
         "--arms", "none,self_reflection,debias_prompt", "--probes", "--seed", "3",
         "--no-cache", "--out", str(out))
    return out


@pytest.fixture(scope="session")
def study_run(runs_root) -> Path:
    """A study: two planted models in two settings over the demo scenarios."""
    folder = runs_root / "study-file"
    folder.mkdir(exist_ok=True)
    study = folder / "two-models.yaml"
    study.write_text(
        "id: two-models\ntitle: two planted models, two settings\n"
        "hypotheses: [the second model is more biased]\n"
        f"scenarios: [{{path: {REPO / 'scenarios' / 'workplace'}, tags: [demo]}}]\n"
        "models: {lo: 'scripted/stereotyped?rate=0.2', hi: 'scripted/stereotyped?rate=0.8'}\n"
        "settings: [interaction, goal]\nvariants: none\nrounds: 1\nreplicates: 2\nseed: 5\n",
        encoding="utf-8")
    out = runs_root / "study"
    _cli("study", "run", str(study), "--no-cache", "--out", str(out))
    return out


@pytest.fixture(scope="session")
def clinical_run(runs_root) -> Path:
    """The shipped consultations with two patient variants and one injected bias."""
    out = runs_root / "clinical"
    _cli("run", str(REPO / "scenarios" / "clinical"), "--model",
         "scripted/clinical?correct=0.5", "--vary", "patient.race=Black,White", "--bias",
         "doctor:race", "--no-cache", "--out", str(out))
    return out


@pytest.fixture(scope="session")
def fork_run(runs_root, plain_run) -> Path:
    """One conversation of the plain run forked at turn 2 under another model."""
    out = runs_root / "fork"
    _cli("replay", str(plain_run), "--conversation", "office-startup-cofounders.base.none.r0",
         "--from-turn", "2", "--model", "scripted/stereotyped?rate=1", "--out", str(out))
    assert (out / "report.html").is_file()  # a fork writes its report, as a run does
    return out


@pytest.fixture(scope="session")
def hostile_run(runs_root) -> Path:
    """An imported transcript whose messages hold markup and script."""
    source = runs_root / "hostile.jsonl"
    lines = [{"conversation_id": "talk", "turn": 0, "speaker": "Ann", "role": "agent",
              "attributes": {"gender": "woman"}, "content": HOSTILE},
             {"conversation_id": "talk", "turn": 1, "speaker": "Bob", "role": "agent",
              "attributes": {"gender": "man"}, "content": "Fine by me.",
              "decision": {"t1": "Ann", "t2": "Bob"}, "phase": "final"}]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    out = runs_root / "hostile"
    _cli("import", "transcript", str(source), "--out", str(out))
    assert (out / "report.html").is_file()  # an import writes its report
    return out


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a module of browser tests (a fresh temporary profile:
    playwright's); two modules use one, about a second to start each. Closed when the module
    is done: playwright's sync API keeps an event loop marked running in the main thread while
    it is open, and a later test that starts a loop of its own (a notebook's, in
    tests/test_api.py) must not see it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run 'make setup' as root (it installs Debian's "
                    "chromium package) or 'apt-get install -y chromium'")
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Opened:
    """A report opened in a new page, with what the page did: console messages, page errors
    and every request it made (each is aborted unless it is the report file itself)."""

    def __init__(self, browser, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.url = path.resolve().as_uri()
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)
        started = time.perf_counter()
        self.page.goto(self.url)
        self.page.wait_for_selector("html[data-ready='1']", timeout=60_000)
        self.seconds = time.perf_counter() - started

    def _route(self, route) -> None:
        self.requests.append(route.request.url)
        if route.request.url == self.url:
            route.continue_()
        else:
            route.abort()

    def problems(self) -> list[str]:
        """Console errors and warnings, and page errors."""
        return [f"{kind}: {text}" for kind, text in self.console
                if kind in ("error", "warning")] + self.errors

    def close(self) -> None:
        """Close the page."""
        self.page.close()


@pytest.fixture
def open_report(browser):
    """``open_report(path)`` → an :class:`Opened` page (closed after the test)."""
    pages: list[Opened] = []

    def opener(path: Path) -> Opened:
        pages.append(Opened(browser, path))
        return pages[-1]

    yield opener
    for page in pages:
        page.close()
