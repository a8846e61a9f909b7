"""Declarative base shared by every domain's models."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# ``Table.info`` key of tables whose ``project_id`` has no foreign key to ``projects`` (the
# append-heavy event tables, where PostgreSQL's per-row foreign-key check costs about a quarter
# of a bulk insert; docs/decisions.md): deleting a project deletes their rows explicitly.
DELETE_WITH_PROJECT = "delete_with_project"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
