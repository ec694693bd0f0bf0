"""SQLModel tables; importing this package registers every table on the metadata."""

from sentinel_app.models.alerts import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertStatus,
    Incident,
    IncidentStatus,
    Severity,
)
from sentinel_app.models.audit import AuditEntry
from sentinel_app.models.delivery import ActionLinkUse, OutgoingWebhook, SmsRef
from sentinel_app.models.escalation import (
    Escalation,
    EscalationPolicy,
    EscalationState,
    EscalationStep,
    StepKind,
)
from sentinel_app.models.identity import ApiKey, Role, Team, TeamMembership, User, UserSession
from sentinel_app.models.integrations import Integration, IntegrationKind, IntegrationRoute
from sentinel_app.models.notifications import (
    Channel,
    ContactKind,
    ContactMethod,
    Notification,
    NotificationRule,
    NotificationStatus,
    PushDevice,
    PushPlatform,
    Urgency,
)
from sentinel_app.models.schedules import (
    LayerParticipant,
    RotationKind,
    RotationLayer,
    Schedule,
    ScheduleOverride,
)

__all__ = [
    "ActionLinkUse",
    "Alert",
    "AlertEvent",
    "AlertEventKind",
    "AlertStatus",
    "ApiKey",
    "AuditEntry",
    "Channel",
    "ContactKind",
    "ContactMethod",
    "Escalation",
    "EscalationPolicy",
    "EscalationState",
    "EscalationStep",
    "Incident",
    "IncidentStatus",
    "Integration",
    "IntegrationKind",
    "IntegrationRoute",
    "LayerParticipant",
    "Notification",
    "NotificationRule",
    "NotificationStatus",
    "OutgoingWebhook",
    "PushDevice",
    "PushPlatform",
    "Role",
    "RotationKind",
    "RotationLayer",
    "Schedule",
    "ScheduleOverride",
    "Severity",
    "SmsRef",
    "StepKind",
    "Team",
    "TeamMembership",
    "Urgency",
    "User",
    "UserSession",
]
