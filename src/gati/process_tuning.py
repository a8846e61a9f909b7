"""Process-wide interpreter settings for ingestion servers (docs/decisions.md, "Process tuning")."""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL = 0.0005
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
