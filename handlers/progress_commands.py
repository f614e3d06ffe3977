"""The ``/pnc`` subcommands of Progress Report One (``handlers.declare.subcommand``)."""

from __future__ import annotations
