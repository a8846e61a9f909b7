"""Many rows into SQLite as multi-row ``INSERT ... VALUES (...), (...)`` statements instead of
``executemany``.

Why: Python's sqlite3 releases the GIL around every ``sqlite3_step``, so ``executemany`` hands
the GIL back and forth once per row. On aiosqlite's thread, next to a busy event loop, each of
those hand-backs waits for the loop thread to let go of the GIL (up to the 5 ms switch
interval): measured on this machine, 10,000 trace events went in at 66,800 rows/s with an idle
second thread and at 215 rows/s with a busy one; as multi-row statements, 56,500 and 48,100
rows/s (docs/benchmarks.md). A multi-row statement binds its parameters in one go and runs the
whole insert with the GIL released.

``register(engine)`` makes every ``executemany`` of an INSERT with a plain ``VALUES (?, ...)``
group (the form SQLAlchemy compiles for SQLite, ``ON CONFLICT`` clauses included) run this way;
:func:`execute_rows` does the same on a raw sqlite3 connection.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

# Below SQLite's 32,766 parameters per statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
MAX_VARIABLES = 30000

_VALUES = re.compile(r"\sVALUES\s*(\(\s*\?(?:\s*,\s*\?)*\s*\))", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def split_insert(statement: str) -> tuple[str, str, str, int] | None:
    """``(head, group, tail, width)`` of ``INSERT ... VALUES (?, ..., ?) tail``, or None for any
    other statement (named parameters, expressions among the values, RETURNING, ...)."""
    if statement.lstrip()[:6].upper() != "INSERT":
        return None
    found = _VALUES.search(statement)
    if found is None:
        return None
    head, tail = statement[: found.start()], statement[found.end() :]
    if "?" in head or "?" in tail or "RETURNING" in tail.upper():
        return None
    group = found.group(1)
    return f"{head} VALUES ", group, tail, group.count("?")


def execute_rows(
    execute: Callable[[str, Sequence[Any]], Any],
    statement: str,
    rows: Sequence[Sequence[Any]],
) -> list[Any] | None:
    """Run ``statement`` for every row as multi-row statements through ``execute(sql, params)``;
    the results of each call, or None (nothing run) when the statement is not a plain INSERT."""
    split = split_insert(statement)
    if split is None:
        return None
    head, group, tail, width = split
    per_statement = max(1, MAX_VARIABLES // width)
    results = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = head + ", ".join([group] * len(chunk)) + tail
        results.append(execute(sql, list(chain.from_iterable(chunk))))
    return results


def _do_executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    if len(parameters) < 2 or not isinstance(parameters[0], (tuple, list)):
        return False
    return execute_rows(cursor.execute, statement, parameters) is not None


def register(engine: Engine) -> None:
    """Every ``executemany`` of a plain INSERT on this SQLite engine as multi-row statements."""
    event.listen(engine, "do_executemany", _do_executemany)
