"""Slack's HTTP request bodies, read by their fields.

Bolt (``slack_bolt.request.internals.parse_body``) takes any form body in which the word
"payload" appears for an interaction's ``payload=…`` form: a slash command whose text says
"payload" ("/pnc ztp open … payload limit ignored") is then read as empty and refused as
malformed. Here a form is an interaction's only when it has a ``payload`` field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest


def read_body(body: str, content_type: str | None) -> dict[str, Any]:
    """A request body's fields: JSON (the Events API), an interaction's ``payload`` field, or a
    form (a slash command)."""
    if not body:
        return {}
    if content_type == "application/json" or body.startswith("{"):
        found: dict[str, Any] = json.loads(body)
        return found
    fields = dict(parse_qsl(body, keep_blank_values=True))
    payload = fields.get("payload")
    if payload is None:
        return fields
    interaction: dict[str, Any] = json.loads(payload)
    return interaction


def bolt_request(
    body: str, *, query: str, headers: dict[str, str | Sequence[str]], context: dict[str, Any]
) -> AsyncBoltRequest:
    """Bolt's request for an HTTP body, read by ``read_body`` where Bolt misreads it (only then
    read twice: the usual request is read once, by Bolt)."""
    request = AsyncBoltRequest(body=body, query=query, headers=headers, context=context)
    if not request.body and "payload" in body:
        fields = read_body(body, request.content_type)
        if fields:
            request.body = fields
            request.context = build_async_context(AsyncBoltContext(context), fields)
    return request
