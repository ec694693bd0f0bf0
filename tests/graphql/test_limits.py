"""Depth and cost limits, page sizes, error codes of malformed operations, introspection."""

from __future__ import annotations

import pytest
from graphql import get_introspection_query

from sentinel_app.api.gql.limits import MAX_COST, MAX_DEPTH
from tests.graphql.conftest import World, codes, data, gql

pytestmark = pytest.mark.asyncio


# Ten levels: alert, integration, defaultEscalationPolicy, team, members, user, memberships, team, members, role.
TEN_DEEP = """{ alert(id: "1") { integration { defaultEscalationPolicy { team { members { user {
  memberships { team { members { role } } } } } } } } } }"""
ELEVEN_DEEP = TEN_DEEP.replace("{ role }", "{ user { id } }")
FRAGMENT = """{ alert(id: "1") { integration { ...I } } }
fragment I on Integration { defaultEscalationPolicy { team { members { user {
  memberships { team { members { user { id } } } } } } } } }"""


async def test_depth_limit(world: World) -> None:
    assert MAX_DEPTH == 10
    # Valid at ten levels: it runs (and finds no alert 1).
    assert codes(await gql(world.client, TEN_DEEP, key=world.admin_key)) == ["NOT_FOUND"]
    refused = await gql(world.client, ELEVEN_DEEP, key=world.admin_key)
    assert codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
    assert refused["errors"][0]["extensions"]["limit"] == "depth"
    # Fragments count where they are spread.
    spread = await gql(world.client, FRAGMENT, key=world.admin_key)
    assert codes(spread) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_cost_limit(world: World) -> None:
    costly = """query($n: Int) { alertsConnection(first: $n) { edges { node {
        timeline { actorUser { memberships { team { members { user { name email } } } } } } } } } }"""
    refused = await gql(world.client, costly, {"n": 100}, key=world.admin_key)
    assert codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
    extensions = refused["errors"][0]["extensions"]
    assert extensions["limit"] == "cost" and extensions["value"] > MAX_COST
    # The same shape on a small page is fine.
    assert "errors" not in await gql(world.client, costly, {"n": 2}, key=world.admin_key)
    aliases = " ".join(f"a{i}: alerts(first: 100) {{ id title team {{ name }} }}" for i in range(60))
    assert codes(await gql(world.client, f"{{ {aliases} }}", key=world.admin_key)) == [
        "GRAPHQL_VALIDATION_FAILED"
    ]


async def test_page_size_limits(world: World) -> None:
    for query, field in (
        ("{ alerts(first: 101) { id } }", "first"),
        ("{ alerts(limit: 0) { id } }", "limit"),
        ("{ alertsConnection(first: 1000) { nodes { id } } }", "first"),
        ("{ incidents(first: -1) { id } }", "first"),
    ):
        body = await gql(world.client, query, key=world.admin_key)
        assert codes(body) == ["BAD_USER_INPUT"], query
        assert body["errors"][0]["extensions"]["field"] == field
    assert (
        len(data(await gql(world.client, "{ alerts(first: 100) { id } }", key=world.admin_key))["alerts"])
        == 0
    )


async def test_malformed_operations(world: World) -> None:
    cases = [
        ("{ alerts(limit: 5 { id } }", {}, "GRAPHQL_PARSE_FAILED"),
        ("{ alertz { id } }", {}, "GRAPHQL_VALIDATION_FAILED"),
        ("query($s: AlertStatus) { alerts(status: $s) { id } }", {"s": "BOGUS"}, "BAD_USER_INPUT"),
        ('{ oncall(scheduleId: "1", at: "yesterday") { until } }', {}, "BAD_USER_INPUT"),
        (
            "query($at: DateTime) { oncall(scheduleId: 1, at: $at) { until } }",
            {"at": "2026-01-01T00:00"},
            "BAD_USER_INPUT",
        ),
    ]
    for query, variables, code in cases:
        body = await gql(world.client, query, variables, key=world.admin_key)
        assert codes(body) == [code], (query, body)
    not_json = await world.client.post(
        "/api/graphql", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400


async def test_introspection_is_allowed(world: World) -> None:
    body = await gql(world.client, get_introspection_query(), key=world.viewer_key)
    names = {t["name"] for t in data(body)["__schema"]["types"]}
    assert {"Alert", "AlertConnection", "Subscription", "DateTime"} <= names
