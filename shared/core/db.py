"""Engine, sessions and the declarative base: one engine per process; the caller's boundary owns
the transaction."""

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The execution option that marks a read-only transaction (see `read_scope`).
READ_ONLY = "support_assistant_read_only"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Connections kept open per process: as many as the API's thread pool runs units of work at once
# (AnyIO's default: 40), so that a burst does not open and close a connection per request.
POOL_SIZE = 20
POOL_OVERFLOW = 20

# SQLite takes one writer at a time. Threads of one process that want to write queue on this lock
# and each starts the moment the one before commits; left to SQLite's busy handler, they would
# poll with growing sleeps (up to 100 ms) and a burst would wait mostly on those sleeps. Writers
# of other processes still meet at SQLite's lock (the busy timeout).
_WRITE_LOCKS: "weakref.WeakKeyDictionary[Engine, tuple[threading.RLock, float]]" = (
    weakref.WeakKeyDictionary()
)


def create_db_engine(url: str, *, busy_timeout_ms: int = 30_000) -> Engine:
    """Create the process's engine; SQLite gets WAL, a busy timeout and immediate write locks."""
    if not url.startswith("sqlite"):
        return create_engine(
            url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW
        )
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
    )
    _WRITE_LOCKS[engine] = (threading.RLock(), busy_timeout_ms / 1000)

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _begin_immediate).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # A unit of work takes the write lock up front: a read-then-write transaction that
        # starts as a reader cannot wait for the lock later and fails with "database is locked"
        # instead. Reads (`read_scope`) take none: in WAL mode they never wait for a writer.
        reading = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if reading else "BEGIN IMMEDIATE")

    return engine


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session for one unit of work: commit on success, roll back on any error."""
    with _writer(factory):
        session = factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


@contextmanager
def _writer(factory: sessionmaker[Session]) -> Iterator[None]:
    """This process's turn to write to its SQLite file (a no-op elsewhere); waiting for it
    ends as SQLite's busy timeout would."""
    bind = factory.kw.get("bind")
    entry = _WRITE_LOCKS.get(bind) if isinstance(bind, Engine) else None
    if entry is None:
        yield
        return
    lock, timeout = entry
    if not lock.acquire(timeout=timeout):
        raise TimeoutError(f"no turn to write to the database within {timeout:.0f} s")
    try:
        yield
    finally:
        lock.release()


@contextmanager
def read_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session that only reads: a consistent snapshot, no write lock (on SQLite), never
    committed. Writing in it is a bug (SQLite may refuse the upgrade to a writer)."""
    session = factory()
    try:
        session.connection(execution_options={READ_ONLY: True})
        yield session
    finally:
        session.close()  # ends the transaction; what was read stays loaded (not expired)


def ping(engine: Engine) -> None:
    """Raise unless the database answers a trivial query."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
