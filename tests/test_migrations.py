from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from shared.core.config import PROJECT_ROOT
from shared.core.db import create_db_engine
from tests.conftest import BACKENDS, empty_database


def _config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_creates_questions_and_downgrade_removes_it(backend: str, tmp_path: Path) -> None:
    with empty_database(backend, tmp_path) as url:
        command.upgrade(_config(url), "head")
        engine = create_db_engine(url)
        assert "questions" in inspect(engine).get_table_names()
        command.downgrade(_config(url), "base")
        assert "questions" not in inspect(engine).get_table_names()
        command.upgrade(_config(url), "head")  # and back up again: every revision reverses
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_models_and_migrations_agree(backend: str, tmp_path: Path) -> None:
    with empty_database(backend, tmp_path) as url:
        command.upgrade(_config(url), "head")
        command.check(_config(url))  # raises when the models hold a change no revision makes


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'wal.db'}", busy_timeout_ms=1234)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
    engine.dispose()
