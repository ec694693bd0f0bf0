"""Which notification channels this installation can use, and what is missing for the others."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from sentinel_app.api.deps import Principal, principal
from sentinel_app.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["notifications"])

# The settings each provider needs, named as operators set them.
_NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "apns": (
        ("apns",),
        "SENTINEL_APNS_KEY_FILE, SENTINEL_APNS_KEY_ID, SENTINEL_APNS_TEAM_ID, SENTINEL_APNS_TOPIC",
    ),
    "fcm": (
        ("fcm",),
        "SENTINEL_FCM_CREDENTIALS_FILE (or SENTINEL_FCM_PROJECT_ID with GOOGLE_APPLICATION_CREDENTIALS)",
    ),
    "twilio": (
        ("sms", "voice"),
        "SENTINEL_TWILIO_ACCOUNT_SID, SENTINEL_TWILIO_AUTH_TOKEN, SENTINEL_TWILIO_FROM_NUMBER",
    ),
    "email": (("email",), "SENTINEL_SMTP_HOST, SENTINEL_SMTP_FROM"),
    "slack": (("slack",), "SENTINEL_SLACK_BOT_TOKEN"),
}


class ChannelState(BaseModel):
    """One delivery channel: usable or not, and why not."""

    channel: str
    enabled: bool
    notice: str


@router.get("/notification-channels", response_model=list[ChannelState], summary="Delivery channels")
def list_channels(who: Principal = Depends(principal)) -> list[ChannelState]:
    """Every channel with whether it has credentials; disabled ones say which settings they need."""
    configured = get_settings().channels
    states = [ChannelState(channel="webhook", enabled=True, notice="")]
    for provider, (channels, needs) in _NEEDS.items():
        enabled = configured.get(provider, False)
        notice = "" if enabled else f"disabled: no credentials configured (set {needs})"
        states += [ChannelState(channel=c, enabled=enabled, notice=notice) for c in channels]
    return sorted(states, key=lambda s: s.channel)
