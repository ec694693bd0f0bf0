"""The GraphQL API (Ariadne, schema-first) at /api/graphql: HTTP and `graphql-transport-ws`.

* Schema: `graphql/schema.graphql` at the repository root is the contract; resolvers live in
  `sentinel_app/api/gql/`. Field and argument names are camelCase in the schema, snake_case here.
* Execution: each HTTP operation runs synchronously in a worker thread with one database session
  (a write session for mutations, each mutation field in its own savepoint), so resolvers use the
  services as they are and never block the event loop. Subscriptions run on the event loop and
  load rows in worker threads (see `gql/subscriptions.py`).
* Auth: `Authorization: Bearer <API key or session token>` on HTTP; on websockets the same value
  in the `connection_init` payload (or the upgrade request's header). A bad credential at
  `connection_init` closes the socket with 4403.
* Limits: depth and cost (`gql/limits.py`), at most 100 items per page, the API body size limit.
  Parsed and validated operations are cached by their text (`gql/documents.py`).
* Explorer: GET /api/graphql serves an offline page (`gql/explorer.py`); the SDL is served at
  /api/graphql/schema.graphql for desktop clients and code generators.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from anyio import to_thread
from ariadne import (
    convert_camel_case_to_snake,
    graphql_sync,
    is_default_resolver,
    load_schema_from_path,
    make_executable_schema,
)
from ariadne.asgi import GraphQL
from ariadne.asgi.handlers import GraphQLHTTPHandler, GraphQLTransportWSHandler
from ariadne.asgi.handlers.graphql_transport_ws import ClientContext
from ariadne.types import GraphQLResult
from ariadne.utils import get_operation_type
from fastapi import FastAPI
from graphql import DocumentNode, GraphQLError, GraphQLObjectType, GraphQLSchema, OperationType
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.websockets import WebSocket

from sentinel_app.api.errors import ApiError
from sentinel_app.api.gql import access, alerts, limits, people, schedules, stats, subscriptions
from sentinel_app.api.gql.context import Credential, GqlContext
from sentinel_app.api.gql.documents import DocumentCache
from sentinel_app.api.gql.errors import ARIADNE_LOGGER, format_error
from sentinel_app.api.gql.explorer import OfflineExplorer
from sentinel_app.api.gql.scalars import datetime_scalar, enums, json_scalar
from sentinel_app.db import session_scope, utcnow

PATH = "/api/graphql"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "graphql"
# graphql-transport-ws close code for a refused connection_init.
CLOSE_FORBIDDEN = 4403
DOCUMENTS = DocumentCache()


@lru_cache(maxsize=1)
def schema_sdl() -> str:
    """The SDL of every .graphql file in `graphql/` (the contract)."""
    return load_schema_from_path(str(SCHEMA_DIR))


def _plain_resolver(name: str) -> Callable[..., Any]:
    """Read `name` from a row, dataclass or dict (the resolvers' return values are never callables)."""

    def resolve(source: Any, _info: Any, **_: Any) -> Any:
        # type() is, unlike graphql-core's isinstance(source, Mapping), cheap: this runs per field.
        return source.get(name) if type(source) is dict else getattr(source, name, None)

    return resolve


def _fast_default_resolvers(schema: GraphQLSchema) -> GraphQLSchema:
    """Replace the default resolvers of output fields by `_plain_resolver` (a page resolves ~1,000)."""
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for field_name, field in named.fields.items():
            if is_default_resolver(field.resolve):
                field.resolve = _plain_resolver(convert_camel_case_to_snake(field_name))
    return schema


@lru_cache(maxsize=1)
def build_schema() -> GraphQLSchema:
    """The executable schema: SDL bound to the resolvers (camelCase ⇄ snake_case converted)."""
    return _fast_default_resolvers(
        make_executable_schema(
            schema_sdl(),
            datetime_scalar,
            json_scalar,
            *enums,
            *alerts.bindables,
            *schedules.bindables,
            *people.bindables,
            *stats.bindables,
            *subscriptions.bindables,
            convert_names_case=True,
        )
    )


def _engine(connection: HTTPConnection) -> sa.Engine:
    engine: sa.Engine = connection.app.state.engine_factory()
    return engine


def _authenticated_context(connection: HTTPConnection, authorization: str | None) -> GqlContext:
    """A context with the caller behind `authorization` (or the reason there is none)."""
    engine = _engine(connection)
    context = GqlContext(engine=engine, connection=connection, authorization=authorization)
    if authorization:
        try:
            context.credential = access.authenticate(connection, engine, authorization, now=context.now)
        except ApiError as exc:
            # Reported by the first field that needs a caller; `login` works without one.
            context.auth_error = exc
    return context


def _operation_type(data: Any, document: DocumentNode | None) -> OperationType | None:
    if document is None or not isinstance(data, dict):
        return None
    try:
        return get_operation_type(document, data.get("operationName"))
    except GraphQLError:
        return None


class SentinelHTTPHandler(GraphQLHTTPHandler):
    """Runs each operation in a worker thread inside one database session."""

    async def execute_graphql_query(
        self,
        request: Any,
        data: Any,
        *,
        context_value: Any = None,
        query_document: DocumentNode | None = None,
    ) -> GraphQLResult:
        """Execute synchronously off the event loop (HTTP requests and websocket queries alike)."""
        return await to_thread.run_sync(self._execute, request, data, context_value, query_document)

    def _execute(
        self, request: Any, data: Any, context: GqlContext | None, document: DocumentNode | None
    ) -> GraphQLResult:
        if context is None:
            context = _authenticated_context(request, request.headers.get("authorization"))
        if document is None and isinstance(data, dict) and isinstance(data.get("query"), str):
            try:
                document = DOCUMENTS.parse(context, data)
            except GraphQLError:
                document = None  # graphql_sync reports the syntax error
        write = _operation_type(data, document) is OperationType.MUTATION
        assert self.schema is not None
        with session_scope(write=write, engine=context.engine) as session:
            context.session = session
            context.refresh(utcnow())
            try:
                return graphql_sync(
                    self.schema,
                    data,
                    context_value=context,
                    query_document=document,
                    query_parser=self.query_parser,
                    query_validator=self.query_validator,
                    validation_rules=self.validation_rules,
                    require_query=isinstance(request, Request) and request.method == "GET",
                    debug=self.debug,
                    introspection=self.introspection,
                    logger=self.logger,
                    error_formatter=self.error_formatter,
                )
            finally:
                context.session = None


def _authorization_of(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    for key in ("Authorization", "authorization"):
        value = payload.get(key)
        if isinstance(value, str):
            return value
    headers = payload.get("headers")
    return _authorization_of(headers) if isinstance(headers, dict) else None


class SentinelWSHandler(GraphQLTransportWSHandler):
    """`graphql-transport-ws` with authentication at `connection_init`."""

    async def handle_websocket_connection_init_message(
        self, websocket: WebSocket, message: dict[str, Any], client_context: ClientContext
    ) -> None:
        """Authenticate, then acknowledge; close with 4403 when the credential is refused."""
        if client_context.connection_init_received:
            await websocket.close(code=4429)  # too many initialisation requests
            return
        client_context.connection_init_received = True
        authorization = _authorization_of(message.get("payload")) or websocket.headers.get("authorization")
        try:
            credential: Credential = await asyncio.to_thread(
                access.authenticate, websocket, _engine(websocket), authorization, now=utcnow()
            )
        except ApiError as exc:
            await websocket.close(code=CLOSE_FORBIDDEN, reason=f"Forbidden: {exc.message}"[:120])
            return
        websocket.state.credential = credential
        websocket.state.authorization = authorization
        await websocket.send_json({"type": self.GQL_CONNECTION_ACK})
        client_context.connection_acknowledged = True


def _websocket_context(connection: HTTPConnection, _data: Any) -> GqlContext:
    """The context of one operation on an acknowledged websocket."""
    context = GqlContext(
        engine=_engine(connection),
        connection=connection,
        authorization=getattr(connection.state, "authorization", None),
    )
    context.credential = getattr(connection.state, "credential", None)
    return context


def create_graphql(*, debug: bool = False) -> GraphQL:
    """The Ariadne ASGI app with Sentinel's handlers, limits, errors and explorer."""
    return GraphQL(
        build_schema(),
        context_value=_websocket_context,
        query_parser=DOCUMENTS.parse,
        query_validator=DOCUMENTS.validate,
        validation_rules=limits.validation_rules(),
        error_formatter=format_error,
        logger=ARIADNE_LOGGER,
        debug=debug,
        explorer=OfflineExplorer(PATH),
        http_handler=SentinelHTTPHandler(),
        websocket_handler=SentinelWSHandler(),
    )


async def _sdl(_: Request) -> Response:
    return PlainTextResponse(schema_sdl(), media_type="application/graphql")


def mount(api: FastAPI) -> None:
    """Serve GraphQL at /api/graphql (HTTP and websocket) and its SDL at /api/graphql/schema.graphql."""
    app = create_graphql()

    async def websocket_endpoint(websocket: WebSocket) -> None:
        await app.handle_websocket(websocket)

    api.add_route(PATH, app.handle_request, methods=["GET", "POST", "OPTIONS"], include_in_schema=False)
    api.add_api_websocket_route(PATH, websocket_endpoint)
    api.add_route(f"{PATH}/schema.graphql", _sdl, methods=["GET"], include_in_schema=False)
