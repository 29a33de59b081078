"""Throwaway databases for test runs and benchmarks: a new SQLite file, or a new PostgreSQL
database created through an admin URL and dropped (connections and all) afterwards."""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text


@contextmanager
def throwaway_database(admin_url: str | None, directory: Path, *, prefix: str) -> Iterator[str]:
    """The URL of a new, empty database: a SQLite file in `directory` when `admin_url` is None,
    else a PostgreSQL database `<prefix>_<random>` on `admin_url`'s server."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    if admin_url is None:
        yield f"sqlite:///{directory / f'{name}.db'}"
        return
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
