"""Notification channels: one thin adapter per provider behind the `Channel` protocol.

`build_registry(settings)` gives the outbox dispatcher an adapter per channel; each
`send(OutgoingMessage)` returns a `DeliveryResult` (sent / retry / failed / invalid_target) and
never raises for delivery problems. Provider modules are imported lazily by the registry, so
importing this package stays cheap. See docs/notifications.md.
"""

from sentinel_app.notify.base import (
    INTENTS,
    Channel,
    ChannelDisabled,
    ChannelKind,
    DeliveryResult,
    DeliveryStatus,
    DisabledChannel,
    InboundIntent,
    InboundRejected,
    Intent,
    OutgoingMessage,
    classify_exception,
    classify_http_status,
)
from sentinel_app.notify.links import ActionLinks, LinkIntent, LinkRejection, SignedLink
from sentinel_app.notify.registry import ChannelRegistry, Endpoints, build_registry

__all__ = [
    "INTENTS",
    "ActionLinks",
    "Channel",
    "ChannelDisabled",
    "ChannelKind",
    "ChannelRegistry",
    "DeliveryResult",
    "DeliveryStatus",
    "DisabledChannel",
    "Endpoints",
    "InboundIntent",
    "InboundRejected",
    "Intent",
    "LinkIntent",
    "LinkRejection",
    "OutgoingMessage",
    "SignedLink",
    "build_registry",
    "classify_exception",
    "classify_http_status",
]
