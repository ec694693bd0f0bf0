"""Demo data: a team of four, a weekly rotation, a two-step policy and an Alertmanager integration.

Running it twice changes nothing: every secret is derived from the server's secret key, so the
same login, API key and webhook URLs are printed each time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlmodel import Session, select

from sentinel_app.domain.notification_plan import Rule
from sentinel_app.models import (
    ApiKey,
    ContactKind,
    ContactMethod,
    EscalationPolicy,
    EscalationStep,
    Integration,
    IntegrationKind,
    LayerParticipant,
    Role,
    RotationKind,
    RotationLayer,
    Schedule,
    StepKind,
    Urgency,
    User,
)
from sentinel_app.models.base import require_id
from sentinel_app.security import derived_token, hash_password, hash_token
from sentinel_app.services import api_keys, integrations, notification_rules, teams, users

TEAM_NAME = "Platform SRE"
TIMEZONE = "America/New_York"
PEOPLE = [
    ("ana@example.com", "Ana Alvarez"),
    ("ben@example.com", "Ben Okafor"),
    ("chen@example.com", "Chen Wei"),
    ("dara@example.com", "Dara Murphy"),
]
# A Monday 09:00 in New York: the rotation's fixed anchor.
ROTATION_START = dt.datetime(2026, 1, 5, 14, 0, tzinfo=dt.UTC)


@dataclass
class DemoResult:
    """What an operator needs to try the demo."""

    login_email: str
    login_password: str
    api_key: str
    team_id: int
    webhook_urls: dict[str, str] = field(default_factory=dict)
    created: bool = False


def seed_demo(session: Session, *, secret_key: str, base_url: str) -> DemoResult:
    """Create the demo data if missing and return its credentials."""
    password = derived_token(secret_key, "pw", "demo-admin")[3:23]
    api_key = derived_token(secret_key, "sk", "demo-api-key")
    integration_token = derived_token(secret_key, "it", "demo-alertmanager")

    team = teams.get_by_slug(session, slug=teams.slugify(TEAM_NAME))
    created = team is None
    if team is None:
        team = teams.create_team(session, name=TEAM_NAME, description="Demo team created by `sentinel demo`.")
    assert team.id is not None

    people: list[User] = []
    for index, (email, name) in enumerate(PEOPLE):
        user = users.get_by_email(session, email=email)
        if user is None:
            user = users.create_user(session, email=email, name=name, timezone=TIMEZONE, is_admin=index == 0)
            _default_contacts(session, user)
        assert user.id is not None
        teams.set_membership(
            session, team_id=team.id, user_id=user.id, role=Role.ADMIN if index == 0 else Role.RESPONDER
        )
        people.append(user)
    admin = people[0]
    assert admin.id is not None
    # Re-derived every run, so a changed secret key still yields a working login.
    admin.password_hash = hash_password(password)
    session.add(admin)

    schedule = _demo_schedule(session, team.id, people)
    policy = _demo_policy(session, team.id, schedule.id)

    integration = session.exec(
        select(Integration).where(
            Integration.team_id == team.id, Integration.name == "Prometheus Alertmanager"
        )
    ).first()
    if integration is None:
        integration, _ = integrations.create_integration(
            session,
            team_id=team.id,
            name="Prometheus Alertmanager",
            kind=IntegrationKind.ALERTMANAGER,
            default_escalation_policy_id=require_id(policy),
            token=integration_token,
        )
    integration.token_hash = hash_token(integration_token)
    session.add(integration)

    key = session.exec(select(ApiKey).where(ApiKey.user_id == admin.id, ApiKey.name == "demo")).first()
    if key is None:
        api_keys.issue_key(
            session, user_id=admin.id, name="demo", scopes=["read", "write", "admin"], token=api_key
        )
    else:
        key.key_hash = hash_token(api_key)
        key.revoked_at = None
        session.add(key)
    session.flush()
    return DemoResult(
        login_email=admin.email,
        login_password=password,
        api_key=api_key,
        team_id=team.id,
        webhook_urls=integrations.webhook_urls(
            base_url=base_url, kind=IntegrationKind.ALERTMANAGER, token=integration_token
        ),
        created=created,
    )


def _default_contacts(session: Session, user: User) -> None:
    contact = ContactMethod(
        user_id=require_id(user),
        kind=ContactKind.EMAIL,
        value=user.email,
        label="Work email",
        verified_at=user.created_at,
    )
    session.add(contact)
    session.flush()
    contact_id = require_id(contact)
    notification_rules.replace_rules(
        session,
        user_id=require_id(user),
        rules=[
            Rule("push", 0, urgency=Urgency.DEFAULT),
            Rule(ContactKind.EMAIL, 1, contact_id, urgency=Urgency.DEFAULT),
            Rule("push", 0, urgency=Urgency.IMPORTANT),
            Rule(ContactKind.EMAIL, 0, contact_id, urgency=Urgency.IMPORTANT),
        ],
    )


def _demo_schedule(session: Session, team_id: int, people: list[User]) -> Schedule:
    schedule = session.exec(
        select(Schedule).where(Schedule.team_id == team_id, Schedule.name == "Primary")
    ).first()
    if schedule is not None:
        return schedule
    schedule = Schedule(
        team_id=team_id, name="Primary", timezone=TIMEZONE, description="Weekly primary rotation"
    )
    session.add(schedule)
    session.flush()
    layer = RotationLayer(
        schedule_id=require_id(schedule),
        name="Weekly",
        kind=RotationKind.WEEKLY,
        interval=1,
        handoff_time="09:00",
        handoff_weekday=0,
        start_at=ROTATION_START,
    )
    session.add(layer)
    session.flush()
    for position, person in enumerate(people):
        session.add(
            LayerParticipant(layer_id=require_id(layer), position=position, user_id=require_id(person))
        )
    return schedule


def _demo_policy(session: Session, team_id: int, schedule_id: int | None) -> EscalationPolicy:
    policy = session.exec(
        select(EscalationPolicy).where(
            EscalationPolicy.team_id == team_id, EscalationPolicy.name == "Default"
        )
    ).first()
    if policy is not None:
        return policy
    policy = EscalationPolicy(
        team_id=team_id,
        name="Default",
        repeat_count=2,
        description="Page the on-call person, then the whole team.",
    )
    session.add(policy)
    session.flush()
    session.add(
        EscalationStep(
            policy_id=require_id(policy),
            position=0,
            kind=StepKind.NOTIFY_SCHEDULE,
            delay_minutes=10,
            targets={"schedule_ids": [schedule_id]},
        )
    )
    session.add(
        EscalationStep(
            policy_id=require_id(policy),
            position=1,
            kind=StepKind.NOTIFY_TEAM,
            delay_minutes=15,
            important=True,
            targets={"team_ids": [team_id]},
        )
    )
    return policy
