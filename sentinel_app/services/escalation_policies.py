"""Escalation policies and their steps: loading snapshots for new escalations (CRUD lives here too)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from sentinel_app.domain.escalation_policy import PolicySnapshot, snapshot_policy
from sentinel_app.models import EscalationPolicy, EscalationStep


def load_snapshots(session: Session, *, policy_ids: Iterable[int]) -> dict[int, PolicySnapshot]:
    """Snapshots of these policies as they are now, by id (missing ids are left out)."""
    wanted = sorted(set(policy_ids))
    if not wanted:
        return {}
    policies = session.exec(select(EscalationPolicy).where(col(EscalationPolicy.id).in_(wanted))).all()
    steps = session.exec(
        select(EscalationStep)
        .where(col(EscalationStep.policy_id).in_(wanted))
        .order_by(col(EscalationStep.policy_id), col(EscalationStep.position), col(EscalationStep.id))
    ).all()
    by_policy: dict[int, list[EscalationStep]] = {}
    for step in steps:
        by_policy.setdefault(step.policy_id, []).append(step)
    return {
        policy.id: snapshot_policy(policy, by_policy.get(policy.id, []))
        for policy in policies
        if policy.id is not None
    }
