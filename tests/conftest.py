"""Shared fixtures: isolated data directories, the shared face photos, a warm model cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from faceledger.auth import passwords
from faceledger.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
NO_SHARED = f"needs the shared face photos at {SHARED_DATA} (absent on this machine)"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "faces-dev").is_dir():
        pytest.skip(NO_SHARED)
    return SHARED_DATA


@pytest.fixture(scope="session")
def faces_dev(shared_data: Path) -> Path:
    return shared_data / "faces-dev"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One converted-model cache for the whole run: conversion is paid once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def settings(tmp_path: Path, model_dir: Path) -> Settings:
    return load_settings(tmp_path / "data", workers=1, model_dir=model_dir)


@pytest.fixture(scope="session")
def pipeline(model_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from faceledger.faces.pipeline import FacePipeline

    data = tmp_path_factory.mktemp("pipeline-data")
    return FacePipeline(load_settings(data, workers=1, model_dir=model_dir))


@pytest.fixture(autouse=True)
def cheap_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with small costs in every test: the same code paths, a fraction of the time
    (test_auth checks the production parameters themselves)."""
    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", fast)
