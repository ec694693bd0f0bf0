"""Signed, expiring, single-use action links."""

from __future__ import annotations

import datetime as dt

import pytest

from sentinel_app.notify.base import ChannelKind
from sentinel_app.notify.links import LINK_PATH, ActionLinks, LinkIntent, LinkRejection

NOW = dt.datetime(2026, 3, 8, 12, 0, tzinfo=dt.UTC)
SECRET = "server-secret-key"
BASE = "https://sentinel.example.com"


@pytest.fixture
def links() -> ActionLinks:
    return ActionLinks(SECRET, BASE + "/", ttl=dt.timedelta(hours=1))


def test_valid_link_gives_the_intent(links: ActionLinks) -> None:
    link = links.make(42, "acknowledge", now=NOW, user_id=7)
    assert link.url == f"{BASE}{LINK_PATH}/{link.token}"
    assert link.expires_at == NOW + dt.timedelta(hours=1)

    verified = links.verify(link.token, now=NOW + dt.timedelta(minutes=59))
    assert verified == LinkIntent(
        alert_id=42, intent="acknowledge", user_id=7, nonce=link.nonce, expires_at=link.expires_at
    )
    # The whole URL works too, and the intent converts for the inbound handler.
    assert isinstance(verified, LinkIntent)
    assert links.verify(link.url, now=NOW) == verified
    inbound = verified.as_inbound(ChannelKind.SMS)
    assert (inbound.intent, inbound.alert_id, inbound.actor, inbound.details) == (
        "acknowledge",
        42,
        "7",
        {"nonce": link.nonce},
    )


def test_each_link_has_its_own_nonce(links: ActionLinks) -> None:
    actions = links.actions_for(42, now=NOW)
    assert set(actions) == {"acknowledge", "resolve"}
    tokens = [url.rsplit("/", 1)[1] for url in actions.values()]
    intents = [links.verify(token, now=NOW) for token in tokens]
    assert [i.intent for i in intents if isinstance(i, LinkIntent)] == ["acknowledge", "resolve"]
    assert len({i.nonce for i in intents if isinstance(i, LinkIntent)}) == 2
    anonymous = links.make(42, "resolve", now=NOW)
    verified = links.verify(anonymous.token, now=NOW)
    assert isinstance(verified, LinkIntent) and verified.user_id is None


def test_expired_link(links: ActionLinks) -> None:
    link = links.make(42, "resolve", now=NOW)
    assert links.verify(link.token, now=NOW + dt.timedelta(hours=1)) == LinkRejection("expired")
    short = links.make(42, "resolve", now=NOW, ttl=dt.timedelta(minutes=5))
    assert links.verify(short.token, now=NOW + dt.timedelta(minutes=6)) == LinkRejection("expired")


@pytest.mark.parametrize(
    ("position", "replacement"),
    [
        (1, "43"),  # another alert
        (2, "r"),  # acknowledge → resolve
        (3, "8"),  # another user
        (4, "9999999999"),  # longer expiry
        (5, "A" * 22),  # another nonce
    ],
)
def test_tampered_link(links: ActionLinks, position: int, replacement: str) -> None:
    link = links.make(42, "acknowledge", now=NOW, user_id=7)
    parts = link.token.split(".")
    parts[position] = replacement
    assert links.verify(".".join(parts), now=NOW) == LinkRejection("bad_signature")


def test_other_secret_and_bad_mac(links: ActionLinks) -> None:
    link = links.make(42, "acknowledge", now=NOW)
    other = ActionLinks("another-secret", BASE)
    assert other.verify(link.token, now=NOW) == LinkRejection("bad_signature")
    flipped = link.token[:-1] + ("A" if link.token[-1] != "A" else "B")
    assert links.verify(flipped, now=NOW) == LinkRejection("bad_signature")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "v2.42.a.-.1.nonce-nonce-nonce.mac",
        "v1.42.x.-.1773000000.AAAAAAAAAAAAAAAAAAAAAA." + "A" * 43,
        "v1.٤٢.a.-.1773000000.AAAAAAAAAAAAAAAAAAAAAA." + "A" * 43,
    ],
)
def test_malformed_link(links: ActionLinks, token: str) -> None:
    assert links.verify(token, now=NOW) == LinkRejection("malformed")


def test_single_use_is_the_callers_record(links: ActionLinks) -> None:
    used: set[str] = set()
    link = links.make(42, "acknowledge", now=NOW)
    first = links.verify(link.token, now=NOW, is_used=used.__contains__)
    assert isinstance(first, LinkIntent)
    used.add(first.nonce)  # the caller records the nonce (atomically, e.g. a UNIQUE column)
    assert links.verify(link.token, now=NOW, is_used=used.__contains__) == LinkRejection("already_used")


def test_requires_a_secret() -> None:
    with pytest.raises(ValueError):
        ActionLinks("", BASE)
