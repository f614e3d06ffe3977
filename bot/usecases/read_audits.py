"""The audit entries of **read** commands (``status``, ``history``, …), written in batches.

A read changes nothing, and writing its entry on its own costs more than answering it (a write
transaction, on SQLite through the one writer). So a read's entry is kept in memory and written
with the others of the same moment: at most ``WINDOW`` seconds after it was added, or at once
when ``MOST`` are waiting, and always before the process stops (``flush_all``: a stopping server
and the shell call it once their requests are done). A crash can therefore lose the entries of
the last ``WINDOW`` seconds of reads — never a write's, which is audited in its own transaction
(``docs/reliability.md``). If the database refuses a batch, the entries are kept for the next
try, up to ``KEEP``; beyond that the oldest are dropped, and the log says how many.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from store import access
from store.db import Database

log = logging.getLogger(__name__)

#: the longest a read's entry waits in memory (seconds)
WINDOW = 1.0
#: this many waiting are written at once
MOST = 500
#: entries kept while the database refuses them
KEEP = 20_000

_LIVE: weakref.WeakSet[ReadAudits] = weakref.WeakSet()


class ReadAudits:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: list[dict[str, Any]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        _LIVE.add(self)

    def add(self, entry: dict[str, Any]) -> None:
        """Keep an entry (a row of ``store.access.add_audit_entries``) to be written soon."""
        self.pending.append(entry)
        if len(self.pending) >= MOST:
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(WINDOW, self._start)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing is None or self._writing.done():
            self._writing = asyncio.ensure_future(self.flush())

    async def flush(self) -> None:
        """Write every entry waiting, in one transaction."""
        async with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            rows, self.pending = self.pending, []
            if not rows:
                return
            try:
                async with self.db.connection(write=True) as conn:
                    await access.add_audit_entries(conn, rows)
            except Exception:
                log.exception("could not write %d audit entries of reads; kept to retry", len(rows))
                self.pending[:0] = rows
                if len(self.pending) > KEEP:
                    dropped = len(self.pending) - KEEP
                    del self.pending[:dropped]
                    log.error("dropped the %d oldest audit entries of reads", dropped)
            finally:
                # entries kept, or added while this batch was written, wait no longer than
                # ``WINDOW`` even if no other read comes
                if self.pending and self._timer is None:
                    loop = asyncio.get_running_loop()
                    self._timer = loop.call_later(WINDOW, self._start)


async def flush_all() -> None:
    """Write the waiting entries of every batch of this process (a stop, the shell)."""
    for audits in list(_LIVE):
        await audits.flush()
