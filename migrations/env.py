"""Alembic environment: migrates the database named by the service's settings."""

from logging.config import fileConfig

from alembic import context

# Every domain's models, so that their tables are on Base.metadata.
import shared.answer_cache.models
import shared.conversations.models
import shared.inbox.models
import shared.knowledge.models
import shared.learning.models
import shared.questions.models  # noqa: F401
from shared.core.config import get_settings
from shared.core.db import Base, create_db_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    return config.attributes.get("database_url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_db_engine(database_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
