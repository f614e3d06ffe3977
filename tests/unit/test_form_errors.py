"""Refusals shown in the assessment form: the same shape whether the door (the access
middleware) or the form's listener refuses."""

from __future__ import annotations

from bot.errors import InvalidDate, PermissionDenied, UnknownIssueCodes
from handlers import blocks
from handlers.middleware import _refused

SUBMISSION = {"type": "view_submission", "view": {"callback_id": blocks.ASSESS_CALLBACK}}


def test_a_refusal_at_the_door_is_shown_like_the_forms_own() -> None:
    managers = [f"<@U0MANAGER{n:02d}>" for n in range(12)]
    refusal = PermissionDenied("assess", "assessor", managers)
    assert 150 < len(refusal.render()) <= blocks.FORM_ERROR_LIMIT
    shown = _refused(SUBMISSION, refusal)
    assert shown == blocks.form_errors(refusal)
    assert shown["errors"] == {blocks.FACTORY: refusal.render()}  # every manager is named


def test_a_refusal_is_shown_under_the_field_it_is_about() -> None:
    day = InvalidDate("The assessment date 2031-01-01 is in the future.", "Give the day.")
    assert _refused(SUBMISSION, day) == {
        "response_action": "errors",
        "errors": {blocks.DAY: "The assessment date 2031-01-01 is in the future. Give the day."},
    }
    codes = UnknownIssueCodes("VN", {"ZZ-01": ()})
    assert list(blocks.form_errors(codes)["errors"]) == [blocks.ISSUES]


def test_a_long_refusal_is_cut_to_what_a_form_shows() -> None:
    long = InvalidDate("x" * 1000)
    assert len(blocks.form_errors(long)["errors"][blocks.DAY]) == blocks.FORM_ERROR_LIMIT
