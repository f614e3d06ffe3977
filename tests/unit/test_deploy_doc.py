"""docs/deploy.md: the settings block is copied into ``/etc/pnc-bot/env``, a systemd
``EnvironmentFile``, so it must be one as written."""

from __future__ import annotations

import re
from pathlib import Path

from bot.settings import Settings

DEPLOY = Path(__file__).parents[2] / "docs" / "deploy.md"


def settings_block() -> list[str]:
    text = DEPLOY.read_text(encoding="utf-8")
    found = re.search(r"Settings, the same on every replica.*?```sh\n(.*?)```", text, re.DOTALL)
    assert found is not None, "the settings block of docs/deploy.md"
    return found[1].splitlines()


def test_the_settings_block_is_a_valid_environment_file() -> None:
    """systemd reads one assignment a line; ``#`` starts a comment only at the start of a line
    (elsewhere it would be part of the value)."""
    known = {f.validation_alias for f in Settings.model_fields.values()}
    keys = []
    for line in settings_block():
        if not line.strip() or line.startswith("#"):
            continue
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*=\S+", line), line
        keys.append(line.partition("=")[0])
    assert keys and set(keys) <= known, set(keys) - known
    assert len(keys) == len(set(keys))
