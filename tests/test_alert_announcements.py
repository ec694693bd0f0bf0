"""Alert changes reach the integration's Slack channel message and the team's outgoing webhooks."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app.db import session_scope
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.ingest.normalized import NormalizedAlert
from sentinel_app.models import Integration, Notification
from sentinel_app.services import alerts, outgoing_webhooks
from sentinel_app.services.actor import Actor
from tests import factories

NOW = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)


def _keys(engine: sa.Engine) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(select(Notification).order_by(col(Notification.id))).all()
    return [r.idempotency_key for r in rows]


def _fire(engine: sa.Engine, integration: Integration) -> int | None:
    """Fire one alert through `integration`, as a webhook would; its id."""
    with session_scope(write=True, engine=engine) as session:
        row = session.get(Integration, integration.id)
        assert row is not None
        [result] = alerts.ingest(
            session,
            integration=row,
            alerts=[NormalizedAlert(action="trigger", dedup_key="k", title="Disk full")],
            now=NOW,
        )
    return result.alert_id


def test_fired_acknowledged_and_resolved_are_announced(
    engine: sa.Engine, db: Session, settings_env: pytest.MonkeyPatch
) -> None:
    settings_env.setenv("SENTINEL_SLACK_BOT_TOKEN", "xoxb-test")
    team = factories.team(db)
    integration = factories.integration(db, team.id, slack_channel_id="C0123")
    hook, _ = outgoing_webhooks.create_webhook(
        db, team_id=team.id or 0, name="ops", url="https://hooks.example.com/x", events=["fired", "resolved"]
    )
    db.commit()
    alert_id = _fire(engine, integration)
    actor = Actor(label="tester")
    for step, change in enumerate((Transition.ACKNOWLEDGE, Transition.RESOLVE), start=1):
        with session_scope(write=True, engine=engine) as session:
            alerts.transition(
                session,
                alert_id=alert_id or 0,
                transition=change,
                actor=actor,
                now=NOW + dt.timedelta(minutes=step),
            )
    keys = _keys(engine)
    assert keys[0] == f"slack:a{alert_id}:fired"
    assert keys[1].startswith(f"hook{hook.id}:a{alert_id}:fired:")
    assert keys[2].startswith(f"slack:a{alert_id}:acknowledged:")
    assert keys[3].startswith(f"slack:a{alert_id}:resolved:")
    assert keys[4].startswith(f"hook{hook.id}:a{alert_id}:resolved:")
    assert len(keys) == 5  # the webhook did not subscribe to acknowledgements


@pytest.mark.parametrize(
    ("slack_token", "channel", "announced"),
    [
        pytest.param("xoxb-test", "C0123", True, id="slack-channel"),
        pytest.param("xoxb-test", None, False, id="no-channel"),
        pytest.param(None, "C0123", False, id="slack-not-configured"),
    ],
)
def test_firing_is_announced_only_where_somebody_listens(
    engine: sa.Engine,
    db: Session,
    settings_env: pytest.MonkeyPatch,
    slack_token: str | None,
    channel: str | None,
    announced: bool,
) -> None:
    if slack_token:
        settings_env.setenv("SENTINEL_SLACK_BOT_TOKEN", slack_token)
    team = factories.team(db)
    integration = factories.integration(db, team.id, slack_channel_id=channel)
    alert_id = _fire(engine, integration)
    assert _keys(engine) == ([f"slack:a{alert_id}:fired"] if announced else [])
