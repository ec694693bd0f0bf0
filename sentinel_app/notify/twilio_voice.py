"""Alert phone calls through Twilio: read the alert, then "press 1 to acknowledge, 2 to escalate".

The call carries its TwiML inline (no fetch from our server). The `<Gather>` posts the pressed
digit to `gather_url` with `alert_id` (and `ref`) in its query string; `twilio_inbound.parse_gather`
turns that callback into an intent after the Twilio signature is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from twilio.twiml.voice_response import VoiceResponse

from sentinel_app.notify._twilio import TwilioClientHolder, deliver
from sentinel_app.notify.base import (
    ChannelDisabled,
    ChannelKind,
    DeliveryResult,
    Intent,
    OutgoingMessage,
    log_result,
    unbuildable,
)

__all__ = ["DEFAULT_DIGITS", "TwilioVoiceChannel", "build_twiml", "gather_action_url"]

DEFAULT_DIGITS: Mapping[str, Intent] = {"1": "acknowledge", "2": "escalate"}
_SPOKEN = {"acknowledge": "acknowledge", "resolve": "resolve", "escalate": "escalate"}
MAX_SPOKEN_CHARS = 600  # Twilio accepts up to 4000 characters of inline TwiML


def gather_action_url(gather_url: str, message: OutgoingMessage) -> str:
    """`gather_url` with the alert id (and reply ref) added to its query string."""
    params: dict[str, str] = {}
    if message.alert_id is not None:
        params["alert_id"] = str(message.alert_id)
    if message.extra.get("reply_ref"):
        params["ref"] = str(message.extra["reply_ref"])
    parts = urlsplit(gather_url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def prompt(digits: Mapping[str, Intent] = DEFAULT_DIGITS) -> str:
    """`Press 1 to acknowledge, 2 to escalate.`"""
    choices = [f"{digit} to {_SPOKEN[intent]}" for digit, intent in sorted(digits.items())]
    return f"Press {', '.join(choices)}."


def build_twiml(
    message: OutgoingMessage,
    *,
    gather_url: str,
    digits: Mapping[str, Intent] = DEFAULT_DIGITS,
    repeat: int = 3,
    gather_timeout: int = 8,
    voice: str | None = None,
    language: str = "en-US",
) -> str:
    """The call script: the alert read out inside a one-digit `<Gather>`, repeated, then goodbye."""
    spoken = f"Fangorn Sentinel alert. {message.severity}. {message.title}."
    if message.body:
        spoken += f" {message.body}"
    if len(spoken) > MAX_SPOKEN_CHARS:
        spoken = spoken[: MAX_SPOKEN_CHARS - 3].rstrip() + "..."
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1,
        action=gather_action_url(gather_url, message),
        method="POST",
        timeout=gather_timeout,
        action_on_empty_result=False,
    )
    for _ in range(max(repeat, 1)):
        gather.say(spoken, voice=voice, language=language)
        gather.say(prompt(digits), voice=voice, language=language)
        gather.pause(length=1)
    response.say("No answer received. Goodbye.", voice=voice, language=language)
    response.hangup()
    return str(response)


class TwilioVoiceChannel:
    """Phone calls. `target` is an E.164 phone number."""

    kind = ChannelKind.VOICE

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        gather_url: str,
        base_url: str | None = None,
        status_callback: str | None = None,
        digits: Mapping[str, Intent] = DEFAULT_DIGITS,
        ring_timeout: int = 30,
        repeat: int = 3,
        voice: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not from_number:
            raise ChannelDisabled("voice", "a Twilio caller number is required")
        if not gather_url:
            raise ChannelDisabled("voice", "a public URL for key presses is required")
        self._holder = TwilioClientHolder(account_sid=account_sid, auth_token=auth_token, base_url=base_url)
        self.from_number = from_number
        self.gather_url = gather_url
        self.status_callback = status_callback
        self.digits = dict(digits)
        self.ring_timeout = ring_timeout
        self.repeat = repeat
        self.voice = voice
        self.timeout = timeout

    def twiml(self, message: OutgoingMessage) -> str:
        return build_twiml(
            message, gather_url=self.gather_url, digits=self.digits, repeat=self.repeat, voice=self.voice
        )

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        try:
            twiml = self.twiml(message)
        except Exception as exc:
            return log_result(self.kind, message, unbuildable("Twilio call", exc))
        return await deliver(
            self.kind,
            message,
            what="Twilio voice",
            timeout=self.timeout,
            create=lambda: self._holder.get().calls.create_async(
                to=message.target,
                from_=self.from_number,
                twiml=twiml,
                timeout=self.ring_timeout,
                status_callback=message.extra.get("status_callback") or self.status_callback,
            ),
        )

    async def aclose(self) -> None:
        await self._holder.aclose()
