"""How one page reaches one person: their notification rules in time order, and outbox idempotency keys.

Pure functions. Rules the service layer relies on:

* A user's rules of the page's urgency apply; an important page with no important rules
  falls back to the default rules, and a user with no applicable rules at all gets
  :data:`FALLBACK_RULES` (push and email at once) rather than silence.
* Each planned notification is due ``delay_minutes`` after the page. Delayed outbox rows
  are written with the claim, so the dispatcher must drop rows whose alert is no longer
  firing at send time (or the acknowledge/resolve handler cancels them).
* :func:`idempotency_key` names one outbox row: (alert, cycle, step, user, method, rule) and,
  when one rule fans out to several addresses (every push device, every verified email),
  the address. Insert outbox rows with "on conflict do nothing": a user reached twice in one
  step (two schedules with the same person on call) is then paged once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sentinel_app.domain.wallclock import to_utc

PUSH = "push"
# "push" (every active device) or a contact kind, as in NotificationRule.method.
METHODS = (PUSH, "sms", "voice", "email", "slack", "webhook")
DEFAULT = "default"
IMPORTANT = "important"
URGENCIES = (DEFAULT, IMPORTANT)

KEY_PREFIX = "esc1"
MAX_KEY_LENGTH = 255
MAX_ID = 2**63 - 1  # a database bigint
_METHOD = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class Rule:
    """One personal notification rule: reach the user by `method` this long after the page."""

    method: str
    delay_minutes: int = 0
    contact_method_id: int | None = None  # None: every verified address of that kind
    urgency: str = DEFAULT


@dataclass(frozen=True)
class PlannedNotification:
    """One notification to send: `rule_index` is the rule's index in the list given to expand_rules."""

    method: str
    due_at: datetime
    contact_method_id: int | None
    rule_index: int


FALLBACK_RULES = (Rule(PUSH), Rule("email"))


def expand_rules(
    rules: Sequence[Rule],
    *,
    paged_at: datetime,
    important: bool,
    fallback: Sequence[Rule] = FALLBACK_RULES,
) -> list[PlannedNotification]:
    """Return the notifications a page at `paged_at` causes, sorted by due time (then rule order).

    Pass a user's rules in a stable order (say by id): the index becomes part of the keys.
    """
    for i, rule in enumerate(rules):
        if rule.method not in METHODS:
            raise ValueError(f"rules[{i}].method: unknown method {rule.method!r}")
        if rule.urgency not in URGENCIES:
            raise ValueError(f"rules[{i}].urgency: unknown urgency {rule.urgency!r}")
        if rule.delay_minutes < 0:
            raise ValueError(f"rules[{i}].delay_minutes: cannot be negative")
    start = to_utc(paged_at)
    chosen = [(i, r) for i, r in enumerate(rules) if important and r.urgency == IMPORTANT]
    if not chosen:
        chosen = [(i, r) for i, r in enumerate(rules) if r.urgency == DEFAULT]
    if not chosen:
        chosen = list(enumerate(fallback))
    planned = [
        PlannedNotification(
            rule.method, start + timedelta(minutes=rule.delay_minutes), rule.contact_method_id, i
        )
        for i, rule in chosen
    ]
    return sorted(planned, key=lambda p: (p.due_at, p.rule_index))


def idempotency_key(
    alert_id: int,
    cycle: int,
    step_index: int,
    user_id: int | None,
    method: str,
    rule_index: int,
    *,
    address: int | str | None = None,
) -> str:
    """Return the outbox key of one notification; stable, unique per its parts, at most 255 characters.

    `user_id` is None for targets that are not people (a webhook step). `address` tells apart
    the rows one rule fans out to: a push device id, a contact method id, or a short string.
    """
    for name, value in (
        ("alert_id", alert_id),
        ("cycle", cycle),
        ("step_index", step_index),
        ("rule_index", rule_index),
        ("user_id", user_id),
    ):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID
        ):
            raise ValueError(f"{name} must be an integer from 0 to {MAX_ID}, not {value!r}")
    if not _METHOD.fullmatch(method):
        raise ValueError(f"method {method!r} must be lower-case letters, digits and _")
    user = "-" if user_id is None else str(user_id)
    key = f"{KEY_PREFIX}:a{alert_id}:c{cycle}:s{step_index}:u{user}:{method}:r{rule_index}"
    if address is not None:
        key += ":" + _address_part(address)
    assert len(key) <= MAX_KEY_LENGTH
    return key


def _address_part(address: int | str) -> str:
    if isinstance(address, int) and not isinstance(address, bool):
        return f"#{address}"
    text = str(address)
    if _PLAIN_ADDRESS.fullmatch(text):
        return text
    # Anything else is hashed; plain addresses contain neither "#" nor "~", so no two meet.
    return "~" + hashlib.sha256(text.encode()).hexdigest()[:40]
