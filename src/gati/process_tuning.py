"""Process-wide interpreter settings for ingestion servers (docs/decisions.md, "Process tuning")."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SWITCH_INTERVAL = 0.0005
# While a SQLite group write whose work is SQLite's own (C, the GIL released) waits on the
# driver's thread: see quick_gil_handoffs.
QUICK_SWITCH_INTERVAL = 0.0001
GC_THRESHOLD0 = 100_000  # docs/decisions.md, "Process tuning": measured on 10,000-event batches

_TUNED = False


def tune_process(dialect: str) -> None:
    """Applied once per process at start-up.

    * aiosqlite runs every statement in a thread that must get the GIL back from the busy event
      loop; with the default 5 ms switch interval each hand-off can wait that long, which made
      group-commit batches several times slower under load.
    * Objects alive after start-up (imports, routes, compiled regexes: ~200,000) are moved out of
      the garbage collector's generations, so the frequent collections that request handling
      triggers no longer walk them; the first generation is collected less often (every 100,000
      allocations: a 10,000-event batch keeps ~40,000 objects alive while it is handled, and at
      10,000 the collections that walked them cost 2 to 6 µs per event).
    """
    global _TUNED
    if _TUNED:
        return
    _TUNED = True
    if dialect == "sqlite" and sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)
    gc.collect()
    gc.freeze()
    threshold0, threshold1, threshold2 = gc.get_threshold()
    gc.set_threshold(max(threshold0, GC_THRESHOLD0), threshold1, threshold2)


_quick_sections = 0
_restore_interval = SWITCH_INTERVAL


@contextmanager
def quick_gil_handoffs() -> Iterator[None]:
    """For the duration of a hop to SQLite's thread that runs little Python: the interpreter's
    switch interval at 0.1 ms instead of 0.5 ms.

    Every call into SQLite gives up the GIL and must take it back from the event loop, which
    gives it up when the interval expires. A group write of error events makes about a dozen
    such calls; at 0.5 ms each the writer, not the event loop, limited envelopes/s on SQLite
    (the loop sat idle a quarter of the time). Process-wide, the shorter interval costs when
    two threads both run Python: they then trade the GIL every 0.1 ms (trace ingest's big
    batches lost 2-5 µs per event with it set permanently), hence only while such a hop is in
    flight (sections may overlap: the last one out restores the interval). docs/benchmarks.md,
    docs/decisions.md "Process tuning"."""
    global _quick_sections, _restore_interval
    if _quick_sections == 0:
        _restore_interval = sys.getswitchinterval()
        if _restore_interval > QUICK_SWITCH_INTERVAL:
            sys.setswitchinterval(QUICK_SWITCH_INTERVAL)
    _quick_sections += 1
    try:
        yield
    finally:
        _quick_sections -= 1
        if _quick_sections == 0:
            sys.setswitchinterval(_restore_interval)
