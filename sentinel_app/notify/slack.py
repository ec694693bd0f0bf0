"""Slack through the Web API (slack-sdk `AsyncWebClient`): one message per alert with buttons.

`send` posts the alert to a channel (`C…`/`G…` id) or, for a user id (`U…`/`W…`), opens a DM and
posts there. The provider id is `<channel>:<ts>`; pass it back as `extra["update_of"]` to edit
that message in place when the alert changes (the buttons follow the status). `ok:false`
errors map by their `error` code: `ratelimited` and server trouble → retry, unknown channel or
user → invalid_target, auth/scope problems → failed.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from sentinel_app.notify.base import (
    ChannelDisabled,
    ChannelKind,
    DeliveryResult,
    OutgoingMessage,
    classify_exception,
    classify_http_status,
    log_result,
    parse_retry_after,
    unbuildable,
)

__all__ = [
    "ACK_ACTION_ID",
    "ACTIONS_BLOCK_ID",
    "RESOLVE_ACTION_ID",
    "SlackChannel",
    "build_blocks",
    "classify_slack_error",
]

SLACK_API_BASE = "https://slack.com/api/"
ACK_ACTION_ID = "sentinel_acknowledge"
RESOLVE_ACTION_ID = "sentinel_resolve"
ACTIONS_BLOCK_ID = "sentinel_alert_actions"

SEVERITY_EMOJI = {
    "critical": ":red_circle:",
    "error": ":large_orange_circle:",
    "warning": ":large_yellow_circle:",
    "info": ":large_blue_circle:",
}
STATUS_EMOJI = {"acknowledged": ":eyes:", "resolved": ":white_check_mark:"}

RETRY_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
INVALID_TARGET_ERRORS = frozenset(
    {
        "channel_not_found",
        "user_not_found",
        "users_not_found",
        "is_archived",
        "user_disabled",
        "cannot_dm_bot",
    }
)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fallback_text(message: OutgoingMessage) -> str:
    status = str(message.extra.get("status") or "")
    prefix = f"[{status.upper()}] " if status in STATUS_EMOJI else ""
    return f"{prefix}[{message.severity.upper()}] {message.title}"


def build_blocks(message: OutgoingMessage) -> list[dict[str, Any]]:
    """Block Kit for an alert: header, body, context, and buttons that follow `extra["status"]`."""
    status = str(message.extra.get("status") or "firing")
    emoji = STATUS_EMOJI.get(status) or SEVERITY_EMOJI.get(message.severity, ":bell:")
    header = f"{emoji} {message.title}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:150], "emoji": True}}
    ]
    if message.body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _escape(message.body)[:3000]}})
    context = [f"*{message.severity.upper()}*", f"status: *{status}*"]
    if message.alert_id is not None:
        alert_url = str(message.extra.get("alert_url") or "")
        label = f"alert #{message.alert_id}"
        context.append(f"<{alert_url}|{label}>" if alert_url else label)
    if message.extra.get("status_by"):
        context.append(f"by {_escape(str(message.extra['status_by']))}")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    value = "" if message.alert_id is None else str(message.alert_id)
    buttons: list[dict[str, Any]] = []
    if status == "firing":
        buttons.append(
            {
                "type": "button",
                "action_id": ACK_ACTION_ID,
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "style": "primary",
                "value": value,
            }
        )
    if status in ("firing", "acknowledged"):
        buttons.append(
            {
                "type": "button",
                "action_id": RESOLVE_ACTION_ID,
                "text": {"type": "plain_text", "text": "Resolve"},
                "style": "danger",
                "value": value,
            }
        )
    if buttons and message.alert_id is not None:
        blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": buttons})
    return blocks


def classify_slack_error(exc: SlackApiError) -> DeliveryResult:
    """Map an `ok:false` / non-200 Slack answer to a delivery result."""
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = getattr(response, "data", None)
    code = str(data.get("error") or "") if isinstance(data, dict) else ""
    headers = getattr(response, "headers", None) or {}
    retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
    error = f"Slack {code or status}"
    if code in RETRY_ERRORS or status == 429:
        return DeliveryResult.retry(error, provider_status=code or str(status), retry_after=retry_after)
    if code in INVALID_TARGET_ERRORS:
        return DeliveryResult.invalid_target(error, provider_status=code)
    if status and status != 200:
        return classify_http_status(
            status, error, provider_status=code or str(status), retry_after=retry_after
        )
    return DeliveryResult.failed(error, provider_status=code or "error")


def split_provider_id(provider_id: str) -> tuple[str, str]:
    """`C123:1712345678.000100` → ("C123", "1712345678.000100")."""
    channel, _, ts = provider_id.partition(":")
    if not channel or not ts:
        raise ValueError(f"not a Slack provider id: {provider_id!r}")
    return channel, ts


class SlackChannel:
    """Slack messages. `target` is a channel id (`C…`/`G…`) or a user id (`U…`/`W…`, sent as a DM)."""

    kind = ChannelKind.SLACK

    def __init__(
        self,
        *,
        token: str,
        base_url: str = SLACK_API_BASE,
        timeout: float = 10.0,
        client: AsyncWebClient | None = None,
    ) -> None:
        if not token and client is None:
            raise ChannelDisabled("slack", "a bot token (xoxb-…) is required")
        self.timeout = timeout
        # No library retry handlers: the outbox dispatcher owns retries and back-off.
        self.client = client or AsyncWebClient(
            token=token, base_url=base_url, timeout=int(timeout), retry_handlers=[]
        )

    async def _channel_for(self, target: str) -> str:
        if target[:1] in ("U", "W"):
            opened = await self.client.conversations_open(users=target)
            return str(opened["channel"]["id"])
        return target

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        try:
            text = _fallback_text(message)
            blocks = build_blocks(message)
        except Exception as exc:
            return log_result(self.kind, message, unbuildable("Slack", exc))
        update_of = str(message.extra.get("update_of") or "")
        try:
            async with asyncio.timeout(self.timeout):
                if update_of:
                    channel, ts = split_provider_id(update_of)
                    response = await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
                else:
                    channel = await self._channel_for(message.target)
                    response = await self.client.chat_postMessage(
                        channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
                    )
        except asyncio.CancelledError:
            raise
        except SlackApiError as exc:
            result = classify_slack_error(exc)
        except ValueError as exc:
            result = DeliveryResult.failed(str(exc), provider_status="bad_update_of")
        except Exception as exc:
            result = classify_exception(exc, what="Slack")
        else:
            result = DeliveryResult.sent(f"{response['channel']}:{response['ts']}")
        return log_result(self.kind, message, result)

    async def update(self, provider_id: str, message: OutgoingMessage) -> DeliveryResult:
        """Edit the message `provider_id` (from an earlier send) to show `message`."""
        return await self.send(replace(message, extra={**message.extra, "update_of": provider_id}))

    async def respond(
        self, response_url: str, message: OutgoingMessage, *, replace_original: bool = True
    ) -> DeliveryResult:
        """Answer a button press through its `response_url` (replaces the original message)."""
        try:
            async with asyncio.timeout(self.timeout):
                answer = await AsyncWebhookClient(response_url, timeout=int(self.timeout)).send(
                    text=_fallback_text(message),
                    blocks=build_blocks(message),
                    replace_original=replace_original,
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return classify_exception(exc, what="Slack response_url")
        if answer.status_code != 200:
            return classify_http_status(
                answer.status_code, f"Slack response_url {answer.status_code}: {answer.body}"
            )
        return DeliveryResult.sent(response_url)

    async def aclose(self) -> None:
        session = getattr(self.client, "session", None)
        if session is not None and not session.closed:
            await session.close()
