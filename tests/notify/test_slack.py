"""Slack adapter against a fake Slack Web API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from sentinel_app.notify.base import ChannelKind
from sentinel_app.notify.slack import SlackChannel
from tests.notify.conftest import SLACK_TOKEN, message
from tests.notify.fakes.http import free_port
from tests.notify.fakes.slack import FakeSlack

pytestmark = pytest.mark.asyncio

CHANNEL = "C0123ALERTS"


@pytest_asyncio.fixture
async def slack(slack_fake: FakeSlack) -> AsyncIterator[SlackChannel]:
    channel = SlackChannel(token=SLACK_TOKEN, base_url=slack_fake.api_url, timeout=5)
    yield channel
    await channel.aclose()


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (element["action_id"], element["text"]["text"], element["value"])
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def test_post_alert_with_buttons(slack: SlackChannel, slack_fake: FakeSlack) -> None:
    result = await slack.send(
        message(ChannelKind.SLACK, CHANNEL, extra={"alert_url": "https://s.example/alerts/42"})
    )

    assert result.status == "sent"
    (request,) = slack_fake.received("/api/chat.postMessage")
    assert request.headers["authorization"] == f"Bearer {SLACK_TOKEN}"
    assert request.headers["content-type"].startswith("application/json")
    args = slack_fake.args(request)
    ((posted_channel, posted_ts),) = slack_fake.messages
    assert result.provider_id == f"{posted_channel}:{posted_ts}" and posted_channel == CHANNEL
    assert args["channel"] == CHANNEL
    assert args["text"] == "[CRITICAL] Disk full on db-1"
    assert args["unfurl_links"] is False
    blocks = args["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": ":red_circle: Disk full on db-1", "emoji": True},
    }
    assert blocks[1] == {"type": "section", "text": {"type": "mrkdwn", "text": "/var is 98% full"}}
    assert (
        blocks[2]["elements"][0]["text"]
        == "*CRITICAL* · status: *firing* · <https://s.example/alerts/42|alert #42>"
    )
    assert blocks[3]["block_id"] == "sentinel_alert_actions"
    assert buttons(blocks) == [
        ("sentinel_acknowledge", "Acknowledge", "42"),
        ("sentinel_resolve", "Resolve", "42"),
    ]
    assert [e["style"] for e in blocks[3]["elements"]] == ["primary", "danger"]


async def test_update_in_place_follows_status(slack: SlackChannel, slack_fake: FakeSlack) -> None:
    posted = await slack.send(message(ChannelKind.SLACK, CHANNEL))
    acked = await slack.send(
        message(
            ChannelKind.SLACK,
            CHANNEL,
            extra={"update_of": posted.provider_id, "status": "acknowledged", "status_by": "<@U42>"},
        )
    )
    resolved = await slack.update(
        posted.provider_id, message(ChannelKind.SLACK, CHANNEL, extra={"status": "resolved"})
    )

    assert posted.status == acked.status == resolved.status == "sent"
    assert acked.provider_id == resolved.provider_id == posted.provider_id  # same message, edited
    assert len(slack_fake.calls("chat.postMessage")) == 1
    first_update, second_update = slack_fake.calls("chat.update")
    channel, ts = posted.provider_id.split(":")
    assert (first_update["channel"], first_update["ts"]) == (channel, ts)
    assert first_update["text"] == "[ACKNOWLEDGED] [CRITICAL] Disk full on db-1"
    assert buttons(first_update["blocks"]) == [("sentinel_resolve", "Resolve", "42")]
    assert "by &lt;@U42&gt;" in first_update["blocks"][2]["elements"][0]["text"]
    assert buttons(second_update["blocks"]) == []
    assert second_update["blocks"][0]["text"]["text"].startswith(":white_check_mark:")


async def test_direct_message_to_a_user(slack: SlackChannel, slack_fake: FakeSlack) -> None:
    result = await slack.send(message(ChannelKind.SLACK, "U0USER01"))

    assert result.status == "sent" and result.provider_id.startswith("D0USER01:")
    assert slack_fake.calls("conversations.open") == [{"users": "U0USER01"}]
    assert slack_fake.calls("chat.postMessage")[0]["channel"] == "D0USER01"


@pytest.mark.parametrize(
    ("target", "error", "expected"),
    [
        ("C404", "channel_not_found", "invalid_target"),
        ("C_ARCHIVED", "is_archived", "invalid_target"),
        ("U_GONE", "user_not_found", "invalid_target"),
        ("C_PRIVATE", "not_in_channel", "failed"),
        ("C_SCOPE", "missing_scope", "failed"),
        ("C_BUSY", "ratelimited", "retry"),
        ("C_OOPS", "internal_error", "retry"),
    ],
)
async def test_ok_false_errors_are_classified(
    slack: SlackChannel, slack_fake: FakeSlack, target: str, error: str, expected: str
) -> None:
    slack_fake.rules[target] = error
    result = await slack.send(message(ChannelKind.SLACK, target))
    assert result.status == expected
    assert result.provider_status == error
    if error == "ratelimited":
        assert result.retry_after == 7


async def test_bad_token_fails_and_5xx_retries(slack_fake: FakeSlack) -> None:
    wrong = SlackChannel(token="xoxb-wrong", base_url=slack_fake.api_url)
    try:
        result = await wrong.send(message(ChannelKind.SLACK, CHANNEL))
    finally:
        await wrong.aclose()
    assert result.status == "failed" and result.provider_status == "invalid_auth"

    good = SlackChannel(token=SLACK_TOKEN, base_url=slack_fake.api_url)
    slack_fake.next_status = 503
    try:
        result = await good.send(message(ChannelKind.SLACK, CHANNEL))
    finally:
        await good.aclose()
    assert result.status == "retry" and result.provider_status == "503"


async def test_update_of_a_missing_message_fails(slack: SlackChannel) -> None:
    result = await slack.send(message(ChannelKind.SLACK, CHANNEL, extra={"update_of": f"{CHANNEL}:1.000"}))
    assert result.status == "failed" and result.provider_status == "message_not_found"


async def test_unreachable_slack_is_retry() -> None:
    channel = SlackChannel(token=SLACK_TOKEN, base_url=f"http://127.0.0.1:{free_port()}/api/", timeout=2)
    try:
        result = await channel.send(message(ChannelKind.SLACK, CHANNEL))
    finally:
        await channel.aclose()
    assert result.status == "retry" and result.provider_status == "connection"


async def test_respond_through_response_url(slack: SlackChannel, slack_fake: FakeSlack) -> None:
    url = slack_fake.response_url()
    result = await slack.respond(url, message(ChannelKind.SLACK, CHANNEL, extra={"status": "acknowledged"}))
    assert result.status == "sent"
    (answer,) = slack_fake.responses
    assert answer["replace_original"] is True
    assert answer["text"] == "[ACKNOWLEDGED] [CRITICAL] Disk full on db-1"
    assert buttons(answer["blocks"]) == [("sentinel_resolve", "Resolve", "42")]
