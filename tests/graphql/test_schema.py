"""The schema is a public contract: a snapshot test, the SDL layout, the offline explorer."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import graphql
import httpx
import pytest
import sqlalchemy as sa
from graphql import build_schema as build_sdl
from graphql import find_breaking_changes, find_dangerous_changes, print_schema

from sentinel_app.api import create_api
from sentinel_app.api.graphql_app import SCHEMA_DIR, build_schema

SNAPSHOT = Path(__file__).with_name("schema.snapshot.graphql")
UPDATE_ENV = "SENTINEL_UPDATE_GRAPHQL_SNAPSHOT"


def test_schema_matches_snapshot() -> None:
    current = print_schema(build_schema()) + "\n"
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.write_text(current)
        return
    if not SNAPSHOT.exists():
        pytest.fail(f"no snapshot at {SNAPSHOT}; create it with {UPDATE_ENV}=1")
    recorded = SNAPSHOT.read_text()
    if current == recorded:
        return
    breaking = find_breaking_changes(build_sdl(recorded), build_sdl(current))
    dangerous = find_dangerous_changes(build_sdl(recorded), build_sdl(current))
    diff = "".join(
        difflib.unified_diff(
            recorded.splitlines(keepends=True), current.splitlines(keepends=True), "snapshot", "graphql/"
        )
    )
    lines = [
        "The GraphQL schema changed. It is the public contract of the mobile apps and the Grafana plugin.",
        *(f"  BREAKING {c.type.name}: {c.description}" for c in breaking),
        *(f"  dangerous {c.type.name}: {c.description}" for c in dangerous),
        f"If the change is intended, update the snapshot: {UPDATE_ENV}=1 .venv/bin/python -m pytest "
        "tests/graphql/test_schema.py -k snapshot",
        diff,
    ]
    pytest.fail("\n".join(lines))


def test_sdl_directory_holds_only_sdl() -> None:
    # A Python package named graphql there would shadow graphql-core, which Ariadne imports.
    assert not (SCHEMA_DIR / "__init__.py").exists()
    assert {p.suffix for p in SCHEMA_DIR.iterdir() if p.is_file()} == {".graphql"}
    assert Path(graphql.__file__).parent.parent.name == "site-packages"


def test_promised_names_are_kept() -> None:
    schema = build_schema()
    query, mutation, subscription = schema.query_type, schema.mutation_type, schema.subscription_type
    assert query is not None and mutation is not None and subscription is not None
    assert {"status", "limit"} <= set(query.fields["alerts"].args)
    alert = schema.type_map["Alert"]
    assert isinstance(alert, graphql.GraphQLObjectType)
    assert {"id", "title", "message", "severity", "status", "firedAt", "assignedTo"} <= set(alert.fields)
    assert {"id", "name", "email"} <= set(schema.type_map["User"].fields)  # type: ignore[attr-defined]
    assert {"alertId", "note"} <= set(mutation.fields["acknowledgeAlert"].args)
    assert {"status", "acknowledgedAt", "acknowledgedBy"} <= set(alert.fields)
    assert "alertCreated" in subscription.fields


@pytest.mark.asyncio
async def test_offline_explorer_and_sdl_endpoint(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/unused.db")
    transport = httpx.ASGITransport(app=create_api(engine=engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://sentinel.test") as client:
        page = await client.get("/api/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "<title>Fangorn Sentinel · GraphQL explorer</title>" in page.text
        # Nothing is loaded from another host: no external scripts, styles or fonts.
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
        assert "fetch(endpoint" in page.text
        sdl = await client.get("/api/graphql/schema.graphql")
        assert sdl.status_code == 200
        assert sdl.headers["content-type"].startswith("application/graphql")
        assert "type Query" in sdl.text and "alertCreated" in sdl.text
    engine.dispose()
