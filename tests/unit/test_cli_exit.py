"""How ``pnc-bot`` ends (``bot.cli._leave``): without tearing the interpreter down once the
command is done — except while a profiler or a tracer (coverage, a debugger) is on, which
writes what it gathered at Python's own exit. The commands' output and exit codes are checked
end to end in ``tests/e2e/test_cli.py``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot import cli


def test_python_exits_as_usual_while_a_profiler_is_on() -> None:
    sys.setprofile(lambda *_: None)
    try:
        with pytest.raises(SystemExit) as done:
            cli._leave(3)
    finally:
        sys.setprofile(None)
    assert done.value.code == 3


@pytest.mark.parametrize(("code", "status", "err"), [(None, 0, ""), (2, 2, ""), ("no", 1, "no\n")])
def test_the_exit_status_and_what_was_written_survive(code: object, status: int, err: str) -> None:
    probe = (
        "import sys\n"
        "from bot import cli\n"
        "print('written', end='')\n"  # buffered, not flushed: a pipe
        f"cli._leave({code!r})\n"
        "print('never')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (status, "written", err)
