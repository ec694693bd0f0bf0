"""No N+1: the number of SQL statements of a page does not depend on its size."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col

from sentinel_app.db import session_scope
from sentinel_app.models import Alert
from tests.graphql.conftest import NOW, World, _fire, data, gql

pytestmark = pytest.mark.asyncio

ALERTS = 60
LIST = """query($n: Int) { alerts(first: $n) {
  id title status firedAt labels { key value }
  assignedTo { id name email } acknowledgedBy { name } team { id name }
  lastEvent { kind at actor actorUser { name } } escalation { state } } }"""
CONNECTION = """query($n: Int) { alertsConnection(first: $n) { pageInfo { hasNextPage endCursor } edges { cursor node {
  id title assignedTo { id name email } team { id name } lastEvent { kind at actorUser { name } }
  timeline { kind actorUser { name } } notifications { status user { name } } incident { title } } } } }"""


@contextmanager
def counting(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect every SQL statement `engine` runs meanwhile."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def many_alerts(world: World) -> list[int]:
    """ALERTS alerts, assigned to two different people, each with a timeline."""
    with session_scope(write=True, engine=world.engine) as session:
        ids = [
            _fire(
                session,
                team_id=world.team_id,
                title=f"Alert {i}",
                key=f"k{i}",
                at=NOW - dt.timedelta(minutes=i),
                policy_id=None,
                labels={"n": str(i)},
            )
            for i in range(ALERTS)
        ]
        people = [world.responder_id, world.responder_id - 1]
        for i, alert_id in enumerate(ids):
            session.execute(
                sa.update(Alert).where(col(Alert.id) == alert_id).values(assigned_to_id=people[i % 2])
            )
    return ids


@pytest.mark.parametrize("query", [LIST, CONNECTION], ids=["alerts", "alertsConnection"])
async def test_statement_count_does_not_grow_with_the_page(
    world: World, many_alerts: list[int], query: str
) -> None:
    await gql(world.client, "{ me { id } }", key=world.admin_key)  # the key's last-use stamp is written once
    counts = {}
    for size in (5, 50):
        with counting(world.engine) as statements:
            body = await gql(world.client, query, {"n": size}, key=world.admin_key)
        result = data(body)
        page = result.get("alerts") or result["alertsConnection"]["edges"]
        assert len(page) == size
        counts[size] = len(statements)
    assert counts[5] == counts[50], counts
    # Authentication (3) + the page (1) + one per related kind, whatever the page size.
    assert counts[50] <= 12, counts
