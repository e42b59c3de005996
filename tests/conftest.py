"""Shared fixtures: isolated data directories, the shared face photos, a warm model cache."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from faceledger.auth import passwords
from faceledger.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
NO_SHARED = f"needs the shared face photos at {SHARED_DATA} (absent on this machine)"
POSTGRES = os.environ.get("FACELEDGER_TEST_POSTGRES")
NO_POSTGRES = "set FACELEDGER_TEST_POSTGRES to a PostgreSQL URL (CI starts one)"


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


@pytest.fixture
def pg_settings(tmp_path: Path, model_dir: Path) -> Iterator[Settings]:
    """Settings over a fresh database of its own on the test PostgreSQL server."""
    if not POSTGRES:
        pytest.skip(NO_POSTGRES)
    name = f"faceledger_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    yield load_settings(tmp_path / "data", database_url=url, workers=1, model_dir=model_dir)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
