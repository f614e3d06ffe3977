"""Slack's request bodies read by their fields (``bot.slack_body``), not by Bolt's guess from
the word "payload" anywhere in them."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from bot.slack_body import bolt_request, read_body

FORM = "application/x-www-form-urlencoded"


def command(text: str) -> str:
    return urlencode({"command": "/pnc", "text": text, "user_id": "U1", "team_id": "T1"})


def test_a_slash_command_that_says_payload_is_a_command() -> None:
    body = command("ztp open VN-1 CL-01 crane payload limit ignored")
    assert read_body(body, FORM)["text"] == "ztp open VN-1 CL-01 crane payload limit ignored"
    request = bolt_request(body, query="", headers={"content-type": FORM}, context={"k": 1})
    assert request.body["command"] == "/pnc"
    assert (request.context.user_id, request.context.team_id, request.context["k"]) == (
        "U1",
        "T1",
        1,
    )


def test_an_interaction_is_read_from_its_payload_field() -> None:
    interaction = {"type": "block_actions", "user": {"id": "U1"}, "note": "payload"}
    body = urlencode({"payload": json.dumps(interaction)})
    assert read_body(body, FORM) == interaction
    assert bolt_request(body, query="", headers={"content-type": FORM}, context={}).body == (
        interaction
    )


def test_json_and_empty_bodies() -> None:
    event = {"type": "event_callback", "event": {"text": "payload"}}
    assert read_body(json.dumps(event), "application/json") == event
    assert read_body("", FORM) == {}
    assert read_body(command("status VN-1"), FORM)["text"] == "status VN-1"
