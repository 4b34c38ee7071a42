"""Shared test fixtures: the real data beside the repository, an isolated data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; fails loudly (never skips) when it is missing."""
    if not (SHARED_DATA / "DATA.md").is_file():
        pytest.fail(
            f"real test data not found at {SHARED_DATA}: clone the project with ../shared beside it"
        )
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MEDGAN_DATA_DIR so nothing touches the user's data."""
    d = tmp_path_factory.mktemp("medgan-data")
    monkeypatch.setenv("MEDGAN_DATA_DIR", str(d))
    return d
