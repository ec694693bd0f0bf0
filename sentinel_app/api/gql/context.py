"""The context of one GraphQL operation: who asks, the database session, the loaders, the clock."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from graphql import GraphQLResolveInfo
from sqlmodel import Session
from starlette.requests import HTTPConnection

from sentinel_app.api.deps import Principal
from sentinel_app.api.errors import ApiError
from sentinel_app.api.gql.errors import unauthenticated
from sentinel_app.api.gql.loaders import Loaders
from sentinel_app.db import session_scope, utcnow

T = TypeVar("T")


@dataclass(frozen=True)
class Credential:
    """An authenticated caller; `session_id` is set when a login session token (not an API key) was used."""

    principal: Principal
    session_id: int | None = None


@dataclass
class GqlContext:
    """Passed to every resolver as `info.context`."""

    engine: sa.Engine
    connection: HTTPConnection
    credential: Credential | None = None
    # Why authentication failed (a bad token), reported by the first field that needs a caller.
    auth_error: ApiError | None = None
    session: Session | None = None
    now: dt.datetime = field(default_factory=utcnow)
    # The raw Authorization value and when it was last checked (subscriptions re-check it).
    authorization: str | None = None
    checked_at: dt.datetime = field(default_factory=utcnow)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db, self.now)

    @property
    def principal(self) -> Principal:
        """The caller, or UNAUTHENTICATED."""
        if self.credential is None:
            raise self.auth_error or unauthenticated()
        return self.credential.principal

    def db(self, fn: Callable[[Session], T]) -> T:
        """Run `fn` with the operation's session, or a short read session outside operations."""
        if self.session is not None:
            return fn(self.session)
        with session_scope(engine=self.engine) as session:
            return fn(session)

    def write_session(self) -> Session:
        """The operation's session, for mutations."""
        if self.session is None:
            raise RuntimeError("mutations run inside an operation session")
        return self.session

    @contextmanager
    def savepoint(self) -> Iterator[Session]:
        """A savepoint of the operation's transaction for one mutation field (fresh loaders first)."""
        session = self.write_session()
        # Rows cached by earlier fields may be stale once this one writes.
        self.refresh()
        with session.begin_nested():
            yield session
            session.flush()

    def refresh(self, now: dt.datetime | None = None) -> None:
        """Start over with empty loaders (a new subscription event, or after a mutation)."""
        self.now = now or self.now
        self.loaders = Loaders(self.db, self.now)


def ctx(info: GraphQLResolveInfo) -> GqlContext:
    """The typed context of a resolver."""
    context: Any = info.context
    assert isinstance(context, GqlContext)
    return context


def atomic(fn: Callable[..., T]) -> Callable[..., T]:
    """Run a mutation field in a savepoint of the operation's transaction.

    Its rows and bus events commit with the operation, or vanish on error without undoing the
    fields before it (GraphQL runs mutation fields one after the other and reports each).
    """

    @functools.wraps(fn)
    def wrapper(obj: Any, info: GraphQLResolveInfo, **kwargs: Any) -> T:
        with ctx(info).savepoint():
            return fn(obj, info, **kwargs)

    return wrapper
