"""Every refusal the bot gives a person is one of these exceptions.

Each says what was wrong (``str(exc)``) and, where it can, what would be right (``exc.hint``).
Handlers and the CLI render them in one place; nothing has been written when one is raised
from a use case, because use cases raise before they commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(f"`{v}`" for v in values)


class PncError(Exception):
    """Base class: a request the bot understood and refused, or could not understand."""

    #: stable machine-readable name, used in the audit log and in JSON output
    code = "error"

    #: Slack users to name after the hint (e.g. the managers who can grant a role); each
    #: front end formats them itself, so the message and hint stay plain text
    mentions: tuple[str, ...] = ()

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def render(self) -> str:
        """The whole refusal as one plain-text paragraph."""
        text = f"{self.message} {self.hint}" if self.hint else self.message
        return f"{text} {', '.join(self.mentions)}" if self.mentions else text


class InvalidInput(PncError):
    """Malformed arguments or field values."""

    code = "invalid_input"


class MalformedCommand(InvalidInput):
    code = "malformed_command"

    def __init__(self, problem: str, usage: str | None = None, hint: str | None = None) -> None:
        super().__init__(problem, hint or (f"Usage: `{usage}`" if usage else None))
        self.usage = usage


class InvalidDate(InvalidInput):
    code = "invalid_date"


class InvisibleCharacter(InvalidInput):
    """Text with a character that hides or reorders what people read (a bidi override, a
    zero-width space, a soft hyphen…); the message names it by its code and says where."""

    code = "invisible_character"


class NotFound(PncError):
    """Something named by the user does not exist; ``suggestions`` holds close matches."""

    code = "not_found"
    noun = "item"

    def __init__(self, value: str, suggestions: Sequence[str] = (), extra: str = "") -> None:
        self.value = value
        self.suggestions = tuple(suggestions)
        hint = f"Did you mean {_quoted(self.suggestions)}?" if self.suggestions else None
        if extra:
            hint = f"{hint} {extra}" if hint else extra
        super().__init__(f"There is no {self.noun} `{value}`.", hint)


class UnknownFactory(NotFound):
    code = "unknown_factory"
    noun = "factory"


class UnknownBuyer(NotFound):
    code = "unknown_buyer"
    noun = "buyer"


class UnknownCountry(NotFound):
    code = "unknown_country"
    noun = "country"


class UnknownAssessment(NotFound):
    code = "unknown_assessment"
    noun = "assessment"


class UnknownNotice(NotFound):
    code = "unknown_notice"
    noun = "notice"


class UnknownSubscription(NotFound):
    code = "unknown_subscription"
    noun = "subscription"


class UnknownCall(NotFound):
    code = "unknown_call"
    noun = "buyer call"


class UnknownIssueCodes(InvalidInput):
    """One or more codes are not in the country's public-reporting catalogue."""

    code = "unknown_issue_codes"

    def __init__(self, country: str, unknown: Mapping[str, Sequence[str]]) -> None:
        self.country = country
        self.unknown = {k: tuple(v) for k, v in unknown.items()}
        parts = []
        for bad, close in self.unknown.items():
            parts.append(f"`{bad}` (did you mean {_quoted(close)}?)" if close else f"`{bad}`")
        noun = (
            "is not a public-reporting issue code"
            if len(parts) == 1
            else ("are not public-reporting issue codes")
        )
        super().__init__(
            f"{', '.join(parts)} {noun} in {country}.",
            f"List the codes with `/pnc issues {country}` (`pnc-bot issues {country}` on the "
            f"command line); use `none` for an assessment with no "
            "non-compliant public-reporting issues.",
        )


class Conflict(PncError):
    """The request contradicts what is already stored."""

    code = "conflict"


class DuplicateAssessment(Conflict):
    code = "duplicate_assessment"


class AlreadyExists(Conflict):
    code = "already_exists"


class StateConflict(Conflict):
    """The factory is not in a state that allows this (e.g. readmission when not designated)."""

    code = "state_conflict"


class UnknownHeldEvent(NotFound):
    code = "unknown_event"
    noun = "event"


class AlreadyReviewed(Conflict):
    """A held event someone already released or dismissed: who, when (and why)."""

    code = "already_reviewed"

    def __init__(
        self,
        number: int,
        factory_id: str,
        what: str,
        when: str,
        note: str | None,
        by: str | None,
    ) -> None:
        who = by or "someone"
        slack = who[:1] in ("U", "W") and who.isalnum()  # a Slack member: mentioned
        why = f' ("{note}")' if note else ""
        super().__init__(
            f"Event #{number} of `{factory_id}` is no longer held for review.",
            f"It was {what} on {when}{why} by" + ("" if slack else f" {who}."),
        )
        self.mentions = (who,) if slack else ()


class PermissionDenied(PncError):
    code = "permission_denied"

    def __init__(self, action: str, needed: str, managers: Sequence[str] = ()) -> None:
        self.action = action
        self.needed = needed
        self.mentions = tuple(managers)
        hint = "A manager can grant it:" if self.mentions else "Ask a pnc-bot manager for it."
        super().__init__(f"`{action}` needs the {needed} role.", hint)


class ConfigError(PncError):
    """The configuration (environment or TOML file) is invalid; raised at start-up."""

    code = "config_error"


class ImportRejected(PncError):
    """A CSV file had bad rows; nothing was written."""

    code = "import_rejected"

    def __init__(self, path: str, errors: Sequence[tuple[int, str]], total_rows: int) -> None:
        self.path = path
        self.errors = list(errors)
        self.total_rows = total_rows
        n = len(self.errors)
        rows = "bad row" if n == 1 else "bad rows"
        super().__init__(
            f"{path}: {n} {rows} out of {total_rows}; nothing was imported.",
            "Fix the rows listed and import the file again.",
        )

    def render(self) -> str:
        lines = [super().render()]
        lines += [f"  line {line}: {reason}" for line, reason in self.errors]
        return "\n".join(lines)


class NotFoundInAssessment(InvalidInput):
    """A progress report names issues the assessment it answers did not find."""

    code = "not_found_in_assessment"

    def __init__(self, what: str, unknown: Mapping[str, Sequence[str]], found: Sequence[str]):
        self.unknown = {k: tuple(v) for k, v in unknown.items()}
        parts = [
            f"`{bad}` (did you mean {_quoted(close)}?)" if close else f"`{bad}`"
            for bad, close in self.unknown.items()
        ]
        super().__init__(
            f"The assessment {what} did not find {', '.join(parts)}.",
            f"It found {_quoted(found) if found else 'no public-reporting issue'}: a progress "
            "report can say only those are fixed (or `none`).",
        )


class UnknownZtpCase(NotFound):
    code = "unknown_ztp_case"
    noun = "zero-tolerance case"


class ZtpCaseConflict(Conflict):
    """Progress a zero-tolerance case cannot take: it is closed, already at that step, or
    past it."""

    code = "ztp_case_conflict"


class InvalidReportDate(InvalidDate):
    """The date of an assessment's report: in the future, or before the assessment."""

    code = "invalid_report_date"


class AlreadyDecided(Conflict):
    """A button pressed on something someone already decided (two managers pressing Approve
    at once): what became of it, by whom, when."""

    code = "already_decided"

    def __init__(self, thing: str, what: str, by: str | None, when: str | None) -> None:
        self.thing, self.what, self.by, self.when = thing, what, by, when
        slack = by is not None and by[:1] in ("U", "W") and by.isalnum()  # a Slack member
        on = f" on {when}" if when else ""
        super().__init__(
            f"{thing} was already {what}{on}: nothing was done.",
            "Already decided by" + ("" if slack else f" {by or 'someone'}."),
        )
        self.mentions = (by,) if slack and by is not None else ()
