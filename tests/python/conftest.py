"""Shared pytest fixtures: where the radix binary and the shared assets are."""
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED_ASSETS = REPO.parent / "shared" / "assets"


@pytest.fixture(scope="session")
def radix_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("RADIX_BIN", REPO / "build" / "test" / "radix"))
    if not path.exists():
        pytest.fail(f"radix binary not found at {path}: build it first (scripts/test.sh does)")
    return path


@pytest.fixture(scope="session")
def shared_assets() -> pathlib.Path:
    if not SHARED_ASSETS.is_dir():
        pytest.skip(f"../shared/assets is missing (looked in {SHARED_ASSETS})")
    return SHARED_ASSETS
