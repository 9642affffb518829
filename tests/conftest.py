"""Shared fixtures: paths to the repository, the shipped scenarios and the published anchors."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ANCHORS = REPO.parent / "shared" / "anchors"


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture
def workplace() -> Path:
    """The shipped workplace scenarios folder."""
    return REPO / "scenarios" / "workplace"


@pytest.fixture
def anchors() -> Path:
    """The published reference data (skips the test when it is not beside the checkout)."""
    if not ANCHORS.is_dir():
        pytest.skip(f"published anchors not found at {ANCHORS}")
    return ANCHORS


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own empty cache of model calls, so tests never see each other's, and
    its own agentsim home, so registered models never leak from or into the user's."""
    monkeypatch.setenv("AGENTSIM_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))
    monkeypatch.setenv("AGENTSIM_HOME", str(tmp_path_factory.mktemp("agentsim-home")))
