"""Start-up cost: what the command line imports, and the registry's static table of built-ins.

Each import check runs in a fresh interpreter (``sys.modules`` of this test process holds
everything the other tests imported), so it sees what the command really loads.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentsim.registry import BUILTINS, KINDS, REGISTRY, Registry, describe

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
# Heavy libraries the start of a command must not load: statistics and tables (judging starts
# them), litellm (only a hosted or served model needs it).
HEAVY = ("scipy", "pandas", "statsmodels", "litellm")


def _python(code: str, *, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          cwd=REPO, timeout=300, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_command_line_loads_no_heavy_library():
    found = _python("import json, sys\nimport agentsim.cli.main\n"
                    "print(json.dumps(sorted(sys.modules)))")
    loaded = {name.split(".")[0] for name in found}
    assert not loaded & {*HEAVY, "langgraph", "networkx", "numpy", "pydantic", "rich"}


def test_help_loads_no_heavy_library():
    found = _python("import contextlib, io, json, sys\nfrom agentsim.cli.main import main\n"
                    "with contextlib.redirect_stdout(io.StringIO()):\n"
                    "    code = main(['--help'])\n"
                    "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}))")
    assert found["code"] == 0
    loaded = {name.split(".")[0] for name in found["modules"]}
    assert not loaded & {*HEAVY, "langgraph", "networkx", "numpy"}
    assert "agentsim.models.client" not in found["modules"]


@pytest.mark.parametrize("kind,command", [("judge", "judges"), ("mitigation", "mitigations")])
def test_listing_plugins_imports_none_of_their_modules(kind, command):
    found = _python(
        "import contextlib, io, json, sys\nfrom agentsim.cli.main import main\n"
        "out = io.StringIO()\nwith contextlib.redirect_stdout(out):\n"
        f"    code = main([{command!r}])\n"
        "print(json.dumps({'code': code, 'out': out.getvalue(), 'modules': sorted(sys.modules)}))")
    assert found["code"] == 0
    lines = found["out"].splitlines()
    listed = dict(line.split(": ", 1) for line in lines)
    assert listed == {name: entry.description for name, entry in BUILTINS[kind].items()}
    assert list(listed) == sorted(listed)
    plugin_modules = {entry.module for entry in BUILTINS[kind].values()}
    assert not plugin_modules & set(found["modules"])
    package = f"agentsim.{kind}s."
    assert not [m for m in found["modules"] if m.startswith(package)
                and m != f"{package}base"], "a plugin module was imported"
    assert not {m.split(".")[0] for m in found["modules"]} & {*HEAVY, "numpy", "pydantic"}


def test_a_scripted_run_reaches_its_first_model_call_without_heavy_libraries(tmp_path):
    """The run path up to the first model call (a hook on ModelClient.complete records
    ``sys.modules`` then): no statistics, no tables, no litellm."""
    code = f"""
import json, sys
import agentsim.models.client as client
seen = {{}}
original = client.ModelClient.complete
async def complete(self, *args, **kwargs):
    if not seen:
        seen["modules"] = sorted(sys.modules)
    return await original(self, *args, **kwargs)
client.ModelClient.complete = complete
from agentsim.cli.main import main
code = main(["run", {str(SCENARIO)!r}, "--model", "scripted/stereotyped", "--no-cache",
             "--out", {str(tmp_path / "run")!r}, "--json"])
print(json.dumps({{"code": code, "modules": seen.get("modules")}}))
"""
    found = _python(code)
    assert found["code"] == 0 and found["modules"], found
    loaded = {name.split(".")[0] for name in found["modules"]}
    assert not loaded & set(HEAVY)
    # Only the judges the run uses are imported, not every built-in one.
    assert "agentsim.judges.builtin" not in found["modules"]
    assert "agentsim.judges.rubric_judge" not in found["modules"]


# --- the static table equals what importing the modules registers -----------------------------

# The packages whose every module may register plugins of a kind: all are imported, and every
# plugin they register must be in the table.
PACKAGES = {"judge": "agentsim.judges", "mitigation": "agentsim.mitigations"}


@pytest.mark.parametrize("kind", KINDS)
def test_the_static_table_equals_what_the_modules_register(kind):
    """Import every built-in module of ``kind`` (for judges and mitigations every module of
    their package): the names registered by agentsim's modules, where each object is defined
    and its description are the table's (the table cannot drift from the code)."""
    modules = {entry.module for entry in BUILTINS[kind].values()}
    if kind in PACKAGES:
        package = importlib.import_module(PACKAGES[kind])
        modules |= {info.name for info in pkgutil.iter_modules(package.__path__,
                                                               f"{package.__name__}.")}
    for module in sorted(modules):
        importlib.import_module(module)
    registered = {name: obj for name, obj in REGISTRY._items[kind].items()
                  if _defined_in(obj) in modules}
    assert set(registered) == set(BUILTINS[kind]), (kind, sorted(registered))
    assert not set(REGISTRY.entry_points(kind)) & set(BUILTINS[kind])
    for name, entry in BUILTINS[kind].items():
        obj = registered[name]
        module, _, attribute = entry.target.partition(":")
        target = sys.modules[module]
        if attribute:
            target = getattr(target, attribute)
        cls = obj if isinstance(obj, type) or inspect.ismodule(obj) else type(obj)
        assert cls is target, (kind, name, entry.target)
        assert describe(obj) == entry.description, (kind, name)
        assert "\n" not in entry.description and entry.description
        assert REGISTRY.get(kind, name) is obj


def _defined_in(obj) -> str:
    if inspect.ismodule(obj):
        return obj.__name__
    return obj.__module__ if isinstance(obj, type) else type(obj).__module__


def test_listing_descriptions_are_the_table_and_names_include_registered_ones():
    registry = Registry(builtins={"judge": {"a": BUILTINS["judge"]["lexicon"]}})
    assert registry.descriptions("judge") == {"a": BUILTINS["judge"]["lexicon"].description}

    class Extra:
        """Extra judge.

        More words."""

    registry.register("judge", "extra", Extra)
    assert registry.names("judge") == ["a", "extra"]
    assert registry.descriptions("judge")["extra"] == "Extra judge."


def test_lookup_by_name_imports_only_that_plugins_module():
    found = _python(
        "import json, sys\nfrom agentsim.registry import REGISTRY\n"
        "judge = REGISTRY.get('judge', 'lexicon')\n"
        "mitigation = REGISTRY.get('mitigation', 'fair_moderator')\n"
        "print(json.dumps({'judge': judge.__name__, 'mitigation': mitigation.__name__,\n"
        "                  'modules': sorted(sys.modules)}))")
    assert (found["judge"], found["mitigation"]) == ("LexiconJudge", "FairModerator")
    modules = set(found["modules"])
    assert "agentsim.judges.lexicon_judge" in modules
    others = {entry.module for name, entry in BUILTINS["judge"].items() if name != "lexicon"}
    assert not others & modules
    assert "agentsim.judges.builtin" not in modules


def test_an_unknown_name_lists_the_known_ones_without_importing_them():
    from agentsim.errors import PluginError

    registry = Registry()
    with pytest.raises(PluginError, match="unknown judge 'nope'.*assignment_bias"):
        registry.get("judge", "nope")


def test_the_cheap_key_check_has_the_model_clients_anchors():
    """cli.checks decides without importing the model stack whether a command line needs the
    full key check; its anchors must be the client's."""
    from agentsim.cli.checks import KEY_ANCHORS, _may_hold_key
    from agentsim.models import client

    assert KEY_ANCHORS == client.KEY_ANCHORS
    assert _may_hold_key(["--x", "sk-abcdefghijklmnop"])  # client imported: always checked


@pytest.mark.parametrize("argv,needs", [
    (["judges"], False), (["--help"], False), (["run", "a.yaml", "--rounds", "3"], False),
    (["run", "--api-base", "http://u:p@host"], True), (["--x", "sk-abcdefghijklmnopq"], True),
    (["--x", "a" * 32], True), (["--x", "?key=1"], True)])
def test_the_cheap_key_check_sends_every_suspect_line_to_the_full_check(argv, needs):
    found = _python("import json\nfrom agentsim.cli.checks import _may_hold_key\n"
                    f"print(json.dumps(_may_hold_key({argv!r})))",
                    env={"SOME_SECRET_VALUE": "x"})
    assert found is needs


def test_the_cheap_key_check_sees_an_environment_value():
    found = _python("import json\nfrom agentsim.cli.checks import _may_hold_key\n"
                    "print(json.dumps(_may_hold_key(['--tag', 'my-own-secret-value'])))",
                    env={"MY_API_KEY": "own-secret"})
    assert found is True
