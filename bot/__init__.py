"""pnc-bot: Better Work's persistent non-compliance framework, tracked and notified."""

__version__ = "0.1.0"
