"""Personal notification rules in time order, and outbox idempotency keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sentinel_app.domain.escalation import (
    FALLBACK_RULES,
    PlannedNotification,
    Rule,
    expand_rules,
    idempotency_key,
)

PAGED = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
MIN = timedelta(minutes=1)

RULES = [
    Rule("sms", 5),
    Rule("push", 0),
    Rule("voice", 15, contact_method_id=31),
    Rule("push", 0, urgency="important"),
    Rule("voice", 1, contact_method_id=31, urgency="important"),
    Rule("push", 5),
]


def test_default_rules_in_time_order_then_rule_order() -> None:
    assert expand_rules(RULES, paged_at=PAGED, important=False) == [
        PlannedNotification("push", PAGED, None, 1),
        PlannedNotification("sms", PAGED + 5 * MIN, None, 0),
        PlannedNotification("push", PAGED + 5 * MIN, None, 5),
        PlannedNotification("voice", PAGED + 15 * MIN, 31, 2),
    ]


def test_important_pages_use_the_important_rules() -> None:
    assert expand_rules(RULES, paged_at=PAGED, important=True) == [
        PlannedNotification("push", PAGED, None, 3),
        PlannedNotification("voice", PAGED + MIN, 31, 4),
    ]


def test_important_pages_fall_back_to_default_rules_and_nobody_is_left_unreached() -> None:
    defaults = [Rule("email", 2)]
    assert expand_rules(defaults, paged_at=PAGED, important=True) == [
        PlannedNotification("email", PAGED + 2 * MIN, None, 0)
    ]
    assert [(p.method, p.due_at) for p in expand_rules([], paged_at=PAGED, important=False)] == [
        (rule.method, PAGED) for rule in FALLBACK_RULES
    ]
    assert expand_rules([], paged_at=PAGED, important=True, fallback=()) == []


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (Rule("pigeon"), "unknown method"),
        (Rule("sms", -1), "negative"),
        (Rule("sms", urgency="high"), "urgency"),
    ],
)
def test_bad_rules_are_refused(rule: Rule, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expand_rules([rule], paged_at=PAGED, important=False)


def test_due_times_are_utc_whatever_zone_the_page_time_had() -> None:
    from zoneinfo import ZoneInfo

    local = PAGED.astimezone(ZoneInfo("America/New_York"))
    (planned,) = expand_rules([Rule("sms", 60)], paged_at=local, important=False)
    assert planned.due_at == PAGED + 60 * MIN and planned.due_at.tzinfo is UTC


def test_idempotency_key_is_stable_and_readable() -> None:
    key = idempotency_key(12, 3, 1, 44, "push", 0, address=901)
    assert key == "esc1:a12:c3:s1:u44:push:r0:#901"
    assert key == idempotency_key(12, 3, 1, 44, "push", 0, address=901)
    assert idempotency_key(12, 0, 4, None, "webhook", 0) == "esc1:a12:c0:s4:u-:webhook:r0"


def test_idempotency_key_separates_every_part() -> None:
    base = {"alert_id": 1, "cycle": 2, "step_index": 3, "user_id": 4, "method": "sms", "rule_index": 5}
    variants = [
        base,
        {**base, "alert_id": 11},
        {**base, "cycle": 12},
        {**base, "step_index": 13},
        {**base, "user_id": 14},
        {**base, "user_id": None},
        {**base, "method": "voice"},
        {**base, "rule_index": 15},
    ]
    keys = {idempotency_key(**v) for v in variants}  # type: ignore[arg-type]
    keys |= {idempotency_key(1, 2, 3, 4, "sms", 5, address=a) for a in (7, "7", "#7", "x" * 500, "x" * 501)}
    assert len(keys) == len(variants) + 5


def test_idempotency_key_stays_within_255_characters() -> None:
    big = 2**63 - 1
    key = idempotency_key(big, big, big, big, "a" * 32, big, address="é" * 1000)
    assert len(key) <= 255
    with pytest.raises(ValueError, match="alert_id"):
        idempotency_key(2**63, 0, 0, 0, "sms", 0)
    with pytest.raises(ValueError, match="cycle"):
        idempotency_key(1, -1, 0, 0, "sms", 0)
    with pytest.raises(ValueError, match="method"):
        idempotency_key(1, 0, 0, 0, "s:ms", 0)
