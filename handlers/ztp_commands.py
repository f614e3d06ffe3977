"""The ``/pnc`` subcommands of zero-tolerance cases (``handlers.declare.subcommand``)."""

from __future__ import annotations
