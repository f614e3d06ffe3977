"""Jinja2 rendering of the words people read (console output here; Slack and email too)."""

from __future__ import annotations

from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined


def _date(value: date | None, empty: str = "—") -> str:
    return value.isoformat() if value else empty


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


@cache
def text_environment() -> Environment:
    """Plain-text templates (no escaping): console output and the text part of emails."""
    env = Environment(
        loader=FileSystemLoader(str(resources.files("templates"))),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["date"] = _date
    env.filters["plural"] = _plural
    return env


def render_text(name: str, **context: Any) -> str:
    return text_environment().get_template(name).render(**context)
