"""Random valid and invalid input never produces a 5xx, and bad input writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from sentinel_app.api import create_api
from sentinel_app.models import Alert
from sentinel_app.services import api_keys, integrations, teams, users

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ingest"
KINDS = ["alertmanager", "grafana_alerting", "grafana", "pagerduty", "webhook", "formatted_webhook"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=6),
    max_leaves=25,
)


def _mutations(document: Any) -> st.SearchStrategy[Any]:
    """The document with one value somewhere replaced by random JSON."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))

    walk(document, ())

    def replace(path: tuple[Any, ...], value: Any) -> Any:
        copy = json.loads(json.dumps(document))
        if not path:
            return value
        target = copy
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        return copy

    return st.builds(replace, st.sampled_from(paths), json_values)


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    with Session(engine, expire_on_commit=False) as session:
        team = teams.create_team(session, name="Fuzz")
        person = users.create_user(session, email="fuzz@example.com", name="Fuzz", is_admin=True)
        assert team.id is not None and person.id is not None
        tokens = {kind: integrations.create_integration(session, team_id=team.id, name=kind, kind=kind)[1]
                  for kind in KINDS}
        _, key = api_keys.issue_key(session, user_id=person.id, name="fuzz", scopes=["admin"])
        session.commit()
    with TestClient(create_api(engine=engine), raise_server_exceptions=False) as http:
        yield http, tokens, key


FIXTURE_DOCS = {path.name: json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))}


def _kind_of(name: str) -> str:
    for kind in ("grafana-alerting", "grafana-legacy", "pagerduty", "formatted-webhook", "webhook", "alertmanager"):
        if name.startswith(kind):
            return {"grafana-alerting": "grafana_alerting", "grafana-legacy": "grafana",
                    "formatted-webhook": "formatted_webhook"}.get(kind, kind)
    raise AssertionError(name)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_webhooks_never_fail_with_a_server_error(client: tuple[TestClient, dict[str, str], str], data: st.DataObject) -> None:
    http, tokens, _ = client
    name = data.draw(st.sampled_from(sorted(FIXTURE_DOCS)))
    kind = _kind_of(name)
    body = data.draw(st.one_of(_mutations(FIXTURE_DOCS[name]), json_values))
    if kind == "pagerduty" and isinstance(body, dict):
        body["routing_key"] = tokens[kind]
    reply = http.post(f"/api/v1/webhooks/{kind}/{tokens[kind]}", json=body)
    assert reply.status_code < 500, reply.text
    assert reply.status_code in (202, 400, 422), reply.text
    if reply.status_code != 202:
        assert reply.json()["error"]["field"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["team_id", "title", "severity", "labels", "dedup_key", "message",
                                               "links", "extra"]), json_values, max_size=6))
def test_rest_alert_creation_never_fails_with_a_server_error(
    client: tuple[TestClient, dict[str, str], str], engine: sa.Engine, body: dict[str, Any]
) -> None:
    http, _, key = client
    with Session(engine) as session:
        before = session.exec(select(func.count()).select_from(Alert)).one()
    reply = http.post("/api/v1/alerts", json=body, headers={"Authorization": f"Bearer {key}"})
    assert reply.status_code < 500, reply.text
    if reply.status_code >= 400:
        assert reply.json()["error"]["code"]
        with Session(engine) as session:
            assert session.exec(select(func.count()).select_from(Alert)).one() == before
