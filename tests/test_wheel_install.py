"""A wheel install (not editable) runs every built-in mitigation and judge from any folder: the
package finds its assets as package data, not beside a checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agentsim.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """The built wheel, unpacked as a site folder (dependencies come from this environment)."""
    build = tmp_path_factory.mktemp("wheel")
    # Build from a copy: building in place writes build/ and *.egg-info into the checkout.
    source = build / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(build / "dist"), str(source)],
                   check=True, capture_output=True)
    [wheel] = (build / "dist").glob("agentsim-*.whl")
    site = build / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _agentsim(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "AGENTSIM_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "agentsim", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_wheel_carries_its_assets(wheel_site):
    names = {str(p.relative_to(wheel_site)) for p in wheel_site.rglob("*") if p.is_file()}
    for asset in ("agentsim/mitigations/assets/self_reflection.yaml",
                  "agentsim/mitigations/assets/ice/examples.yaml",
                  "agentsim/scenario/data/biases.yaml",
                  "agentsim/scenario/data/first_names.csv",
                  "agentsim/judges/rubrics/stereotyping.yaml"):
        assert asset in names
    probe = subprocess.run([sys.executable, "-c", "import agentsim; print(agentsim.__file__)"],
                           env={**os.environ, "PYTHONPATH": str(wheel_site)}, cwd=wheel_site,
                           capture_output=True, text=True, check=True)
    assert Path(probe.stdout.strip()).is_relative_to(wheel_site)  # not the checkout's copy


def test_every_builtin_mitigation_and_judge_runs_from_a_wheel(wheel_site, tmp_path):
    shutil.copy(ROOT / "scenarios" / "workplace" / "office-annual-conference.yaml",
                tmp_path / "office.yaml")
    judges = ",".join(REGISTRY.names("judge"))
    for name in REGISTRY.names("mitigation"):
        extra = ["--role", "finetuned=scripted/fair"] if name == "finetuned" else []
        out = f"run-{name}"
        arm = "self_reflection+ice" if name == "ice" else name  # ice only adds to a reflection
        done = _agentsim(wheel_site, tmp_path, "run", "office.yaml", "--model",
                         "scripted/stereotyped", "--mitigation", arm, "--replicates", "1",
                         "--out", out, "--json", *extra)
        assert done.returncode == 0, (name, done.stderr[-2000:])
        summary = json.loads(done.stdout)
        assert (summary["conversations"], summary["failed"]) == (1, 0), name
    judged = _agentsim(wheel_site, tmp_path, "judge", "run-self_reflection", "--judges", judges,
                       "--role", "judge=scripted/judge", "--json")
    assert judged.returncode == 0, judged.stderr[-2000:]
    metrics = json.loads(judged.stdout)["metrics"]
    assert any(key.startswith("bias") for key in metrics)


def test_the_files_users_copy_match_the_shipped_assets():
    """The top-level mitigations/ and the clinical catalogue are copies to edit; they must say
    what the package data says, or a user would edit a text the run does not use."""
    pairs = [(ROOT / "mitigations" / name, ROOT / "agentsim" / "mitigations" / "assets" / name)
             for name in ("debias_prompt.txt", "fair_moderator.yaml", "self_reflection.yaml",
                          "ice/examples.yaml")]
    pairs.append((ROOT / "scenarios" / "clinical" / "biases.yaml",
                  ROOT / "agentsim" / "scenario" / "data" / "biases.yaml"))
    for copy, shipped in pairs:
        assert copy.read_bytes() == shipped.read_bytes(), copy
