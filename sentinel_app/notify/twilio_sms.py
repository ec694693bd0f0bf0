"""Alert text messages through Twilio, with short reply codes (`1a` acknowledge, `1r` resolve).

A reply code is `<ref><letter>`: `ref` is a short per-person reference to the alert (the caller
allocates it and passes `extra["reply_ref"]`, falling back to the alert id), the letter picks the
intent. `twilio_inbound.parse_sms_reply` reads replies with the same `ReplyCodes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sentinel_app.notify._twilio import TwilioClientHolder, deliver
from sentinel_app.notify.base import (
    ChannelDisabled,
    ChannelKind,
    DeliveryResult,
    Intent,
    OutgoingMessage,
)

__all__ = ["DEFAULT_REPLY_CODES", "ReplyCodes", "TwilioSMSChannel", "build_sms_body"]


@dataclass(frozen=True)
class ReplyCodes:
    """The reply-code scheme: one letter per intent, plus words people also type."""

    acknowledge: str = "a"
    resolve: str = "r"
    escalate: str = "e"
    synonyms: dict[str, Intent] = field(
        default_factory=lambda: {
            "ack": "acknowledge",
            "acknowledge": "acknowledge",
            "res": "resolve",
            "resolve": "resolve",
            "esc": "escalate",
            "escalate": "escalate",
        }
    )

    def letter(self, intent: Intent) -> str:
        return {"acknowledge": self.acknowledge, "resolve": self.resolve, "escalate": self.escalate}[intent]

    def code(self, ref: str, intent: Intent) -> str:
        """The text to reply, e.g. `1a`."""
        return f"{ref}{self.letter(intent)}"

    def parse(self, text: str) -> tuple[Intent, str | None] | None:
        """(intent, ref) from a reply such as `1a`, `1 A`, `ack 1`, `r`; None if it is not one."""
        words: dict[str, Intent] = {
            self.acknowledge: "acknowledge",
            self.resolve: "resolve",
            self.escalate: "escalate",
        }
        words.update(self.synonyms)
        cleaned = text.strip().lower().rstrip(".!")
        match = re.fullmatch(r"(\d+)?\s*([a-z]+)\s*(\d+)?", cleaned)
        if not match:
            return None
        before, word, after = match.groups()
        if before and after:
            return None
        intent = words.get(word)
        if intent is None:
            return None
        return intent, before or after


DEFAULT_REPLY_CODES = ReplyCodes()


def build_sms_body(
    message: OutgoingMessage,
    *,
    codes: ReplyCodes = DEFAULT_REPLY_CODES,
    max_length: int = 300,
    include_links: bool = False,
) -> str:
    """`[SEVERITY] title`, some body, then the reply codes; cut to fit `max_length` characters."""
    ref = str(message.extra.get("reply_ref") or (message.alert_id if message.alert_id is not None else ""))
    lines_after: list[str] = []
    if ref:
        lines_after.append(
            f"Reply {codes.code(ref, 'acknowledge')} to ack, {codes.code(ref, 'resolve')} to resolve"
        )
    if include_links and message.actions.get("acknowledge", "").startswith(("http://", "https://")):
        lines_after.append(f"Ack: {message.actions['acknowledge']}")
    tail = "\n".join(lines_after)
    head = f"[{message.severity.upper()}] {message.title}"
    if message.body:
        head += f"\n{message.body}"
    room = max_length - len(tail) - (1 if tail else 0)
    if len(head) > room:
        head = head[: max(room - 1, 0)].rstrip() + "…"
    return f"{head}\n{tail}" if tail else head


class TwilioSMSChannel:
    """Text messages. `target` is an E.164 phone number."""

    kind = ChannelKind.SMS

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        base_url: str | None = None,
        status_callback: str | None = None,
        codes: ReplyCodes = DEFAULT_REPLY_CODES,
        max_length: int = 300,
        include_links: bool = False,
        timeout: float = 10.0,
    ) -> None:
        if not from_number:
            raise ChannelDisabled("sms", "a Twilio sender number is required")
        self._holder = TwilioClientHolder(account_sid=account_sid, auth_token=auth_token, base_url=base_url)
        self.from_number = from_number
        self.status_callback = status_callback
        self.codes = codes
        self.max_length = max_length
        self.include_links = include_links
        self.timeout = timeout

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        body = build_sms_body(
            message, codes=self.codes, max_length=self.max_length, include_links=self.include_links
        )
        return await deliver(
            self.kind,
            message,
            what="Twilio SMS",
            timeout=self.timeout,
            create=lambda: self._holder.get().messages.create_async(
                to=message.target,
                from_=self.from_number,
                body=body,
                status_callback=message.extra.get("status_callback") or self.status_callback,
            ),
        )

    async def aclose(self) -> None:
        await self._holder.aclose()
