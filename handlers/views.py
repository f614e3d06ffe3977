"""Form submissions. The assessment form is validated by recording it: a refusal becomes field
errors in the form (``response_action=errors``, within Slack's 3 s), success closes it and the
person gets the result in a direct message."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.errors import PncError
from bot.roles import Actor
from bot.usecases import assessments
from bot.usecases.core import Core
from bot.vocabulary import AuditOutcome
from handlers import blocks
from handlers.runner import ACTOR, CORE, audit, tracked

log = logging.getLogger(__name__)


def register(app: AsyncApp) -> None:
    app.view(blocks.ASSESS_CALLBACK)(tracked(assessment_submitted))


async def assessment_submitted(
    ack: Any, view: dict[str, Any], context: dict[str, Any], client: Any
) -> None:
    core: Core = context[CORE]
    actor = context.get(ACTOR)
    if not isinstance(actor, Actor):  # the server refuses a submission without a user
        log.warning("a form was submitted without a user; nothing was recorded")
        await ack(response_action="errors", errors={blocks.FACTORY: blocks.phrase("failure")})
        return
    try:
        values = blocks.assess_values(view)
    except PncError as exc:
        context["pnc_text"] = "form: assess (not readable)"
        await ack(**blocks.form_errors(exc))
        await audit(context, AuditOutcome.REFUSED, {"error": exc.code})
        return
    context["pnc_text"] = (
        f"form: assess {values['factory']} {values['date']} {blocks.codes_of(values['codes'])}"
    )[:2000]
    try:
        outcome = await assessments.record(
            core,
            actor,
            values["factory"],
            values["date"],
            values["codes"],
            values["kind"],
            report_on=values["report_on"],
        )
    except PncError as exc:
        await ack(**blocks.form_errors(exc))
        await audit(context, AuditOutcome.REFUSED, {"error": exc.code})
        return
    except Exception as exc:
        log.exception("could not record the form of %s", actor.user_id)
        await ack(response_action="errors", errors={blocks.FACTORY: blocks.phrase("unavailable")})
        await audit(context, AuditOutcome.ERROR, {"error": type(exc).__name__})
        return
    await ack()
    await audit(context, AuditOutcome.OK, {"assessment_id": outcome.assessment_id})
    reply = blocks.template("assessed", o=outcome)
    try:
        await client.chat_postMessage(
            channel=actor.user_id, text=reply["text"], blocks=reply["blocks"]
        )
    except Exception:
        log.exception("could not confirm the assessment to %s", actor.user_id)
