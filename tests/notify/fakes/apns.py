"""A fake APNs provider API: HTTP/2 over TLS (h2), ES256 JWT checked with the public key.

Like Apple: the `apns-id` of the request is echoed; 200 has no body; errors send
`{"reason": …}` (plus `timestamp` for 410). Per-token answers are set in `rules`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded
from h2.exceptions import ProtocolError


@dataclass
class APNsRequest:
    headers: dict[str, str]
    token: str
    body: dict[str, Any]
    jwt_header: dict[str, Any]
    jwt_claims: dict[str, Any]
    answered: int


class _H2Server(asyncio.Protocol):
    def __init__(self, fake: FakeAPNs) -> None:
        self.fake = fake
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.fake._transports.add(transport)
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.fake._transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            events = self.conn.receive_data(data)
        except ProtocolError:
            self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                self.streams[event.stream_id] = (
                    {str(k): str(v) for k, v in event.headers or []},
                    bytearray(),
                )
            elif isinstance(event, DataReceived):
                self.streams[event.stream_id][1].extend(event.data or b"")
                self.conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
            elif isinstance(event, StreamEnded):
                headers, body = self.streams.pop(event.stream_id)
                self._respond(event.stream_id, headers, bytes(body))
            elif isinstance(event, ConnectionTerminated):
                self.transport.close()
                return
        self.transport.write(self.conn.data_to_send())

    def _respond(self, stream_id: int, headers: dict[str, str], body: bytes) -> None:
        apns_id = headers.get("apns-id") or str(uuid.uuid4()).upper()
        status, reason = self.fake.answer(headers, body)
        response_headers = [(":status", str(status)), ("apns-id", apns_id)]
        if status == 200:
            self.conn.send_headers(stream_id, response_headers, end_stream=True)
            return
        error: dict[str, Any] = {"reason": reason}
        if status == 410:
            error["timestamp"] = int(time.time() * 1000)
        self.conn.send_headers(stream_id, [*response_headers, ("content-type", "application/json")])
        self.conn.send_data(stream_id, json.dumps(error).encode(), end_stream=True)


class FakeAPNs:
    """`rules[token] = (status, reason)`; anything else is accepted with 200."""

    def __init__(
        self, *, ssl_context: ssl.SSLContext, public_key_pem: bytes, key_id: str, team_id: str, topic: str
    ) -> None:
        self.ssl_context = ssl_context
        self.public_key_pem = public_key_pem
        self.key_id = key_id
        self.team_id = team_id
        self.topic = topic
        self.rules: dict[str, tuple[int, str]] = {}
        self.requests: list[APNsRequest] = []
        self.host = "127.0.0.1"
        self.port = 0
        self._transports: set[asyncio.Transport] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        path = headers.get(":path", "")
        token = path.removeprefix("/3/device/")
        auth = headers.get("authorization", "")
        jwt_header: dict[str, Any] = {}
        claims: dict[str, Any] = {}
        status, reason = 200, ""
        try:
            scheme, _, encoded = auth.partition(" ")
            if scheme.lower() != "bearer" or not encoded:
                raise jwt.InvalidTokenError("no bearer token")
            jwt_header = jwt.get_unverified_header(encoded)
            if jwt_header.get("kid") != self.key_id or jwt_header.get("alg") != "ES256":
                raise jwt.InvalidTokenError("wrong kid/alg")
            claims = jwt.decode(
                encoded,
                self.public_key_pem,
                algorithms=["ES256"],
                issuer=self.team_id,
                options={"require": ["iat", "iss"]},
            )
        except jwt.InvalidTokenError:
            status, reason = 403, "InvalidProviderToken"
        if status == 200 and (headers.get(":method") != "POST" or not path.startswith("/3/device/")):
            status, reason = 405 if headers.get(":method") != "POST" else 404, "MethodNotAllowed"
        if status == 200 and headers.get("apns-topic") != self.topic:
            status, reason = 400, "BadTopic"
        if status == 200 and token in self.rules:
            status, reason = self.rules[token]
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            parsed, status, reason = {}, 400, "PayloadEmpty"
        self.requests.append(APNsRequest(headers, token, parsed, jwt_header, claims, status))
        return status, reason

    def start(self) -> FakeAPNs:
        self._thread.start()

        async def serve() -> asyncio.Server:
            return await self._loop.create_server(lambda: _H2Server(self), self.host, 0, ssl=self.ssl_context)

        self._server = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(5)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for transport in list(self._transports):
                transport.close()
            for _ in range(100):  # TLS transports close asynchronously
                if not self._transports:
                    break
                await asyncio.sleep(0.01)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
