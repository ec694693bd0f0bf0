"""The configuration pages in a real browser against the production app: a weekly rotation built
through the layer form shows the right people on the right days, a two-step escalation policy and
its preview, an integration's webhook URLs (copied to the clipboard) and payloads, a contact method
verified with the code from the outbox, and the server refusing a save by someone who is (now) a
viewer. Screenshots of every page at desktop and phone width go to test-artifacts/screenshots/.

People, teams and sessions are seeded straight into the shared app's database (the app's own
services write them), then each browser gets the session cookie, so no test depends on sign-in.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Locator, Page, expect
from sqlmodel import Session, col, select

from pages.state import SESSION_COOKIE
from sentinel_app.db import utcnow
from sentinel_app.models import EscalationPolicy, Integration, Notification, Role, Schedule, TeamMembership
from sentinel_app.models.base import require_id
from sentinel_app.services import api_keys, escalation_policies, integrations, sessions, teams, users
from sentinel_app.services import schedules as schedule_service
from tests.support.app_process import RunningApp, app_db_engine

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000
DASH = "\u2013"  # the calendar writes ranges with an en dash


@dataclass
class Crew:
    """A team with an admin (Ann), two responders (Bob, Cleo) and a viewer (Vic)."""

    app: RunningApp
    team_id: int
    team: str
    ids: dict[str, int]
    names: dict[str, str]
    schedule_id: int
    policy_id: int


def _engine(app: RunningApp) -> sa.Engine:
    return app_db_engine(app.data_dir)


@pytest.fixture(scope="module")
def crew(app_server: RunningApp) -> Iterator[Crew]:
    """Seed one team for this module (unique names: the app is shared with other modules)."""
    tag = uuid.uuid4().hex[:6]
    engine = _engine(app_server)
    ids: dict[str, int] = {}
    names: dict[str, str] = {}
    with Session(engine, expire_on_commit=False) as session:
        team = teams.create_team(session, name=f"Rota {tag}")
        for key, name, role in (
            ("ann", f"Ann Admin {tag}", Role.ADMIN),
            ("bob", f"Bob Builder {tag}", Role.RESPONDER),
            ("cleo", f"Cleo Cover {tag}", Role.RESPONDER),
            ("vic", f"Vic Viewer {tag}", Role.VIEWER),
        ):
            person = users.create_user(session, email=f"{key}-{tag}@example.com", name=name, timezone="UTC")
            teams.set_membership(session, team_id=require_id(team), user_id=require_id(person), role=role)
            ids[key], names[key] = require_id(person), name
        # Something to look at on every page, whichever tests run first.
        schedule = schedule_service.create_schedule(session, team_id=require_id(team), name="Seeded rotation")
        schedule_service.create_layer(
            session,
            schedule=schedule,
            fields={
                "name": "Daily",
                "kind": "daily",
                "start_at": dt.datetime(2030, 1, 1, 8, tzinfo=dt.UTC),
                "participants": [ids["ann"], ids["bob"], ids["cleo"]],
            },
        )
        policy, _ = escalation_policies.create_policy(
            session,
            team_id=require_id(team),
            name="Seeded policy",
            steps=[
                {
                    "kind": "notify_schedule",
                    "delay_minutes": 5,
                    "targets": {"schedule_ids": [require_id(schedule)]},
                },
                {"kind": "notify_team", "important": True, "targets": {"team_ids": [require_id(team)]}},
            ],
        )
        integrations.create_integration(
            session,
            team_id=require_id(team),
            name=f"seeded-{tag}",
            kind="grafana_alerting",
            default_escalation_policy_id=require_id(policy),
        )
        session.commit()
    engine.dispose()
    yield Crew(
        app=app_server,
        team_id=require_id(team),
        team=team.name,
        ids=ids,
        names=names,
        schedule_id=require_id(schedule),
        policy_id=require_id(policy),
    )


def _page(browser: Browser, crew: Crew, who: str, viewport: dict[str, int] = DESKTOP) -> Page:
    """A browser signed in as `who` (a fresh session row, its token in the session cookie)."""
    engine = _engine(crew.app)
    with Session(engine, expire_on_commit=False) as session:
        user = users.get_by_email(session, email=f"{who}-{crew.team.split()[-1]}@example.com")
        assert user is not None
        _, token = sessions.open_session(session, user=user, client="web", user_agent="e2e", now=utcnow())
        session.commit()
    engine.dispose()
    context = browser.new_context(base_url=crew.app.base_url, viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    context.add_cookies(
        [{"name": SESSION_COOKIE, "value": token, "url": crew.app.base_url, "sameSite": "Strict"}]
    )
    return context.new_page()


def _shot(page: Page, artifacts_dir: Path, name: str, size: str) -> None:
    folder = artifacts_dir / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # the clock script fills in relative times
    page.screenshot(path=str(folder / f"{name}-{size}.png"), full_page=True)


def _choose(page: Page, trigger: Locator, option: str) -> None:
    """Pick an option of a Radix select."""
    trigger.click()
    page.get_by_role("option", name=option, exact=True).click()


def _day(page: Page, date: str) -> Locator:
    return page.locator(f"#day-{date}")


# --- schedules ---------------------------------------------------------------------------------


def test_weekly_rotation_through_the_form_shows_the_right_people_on_the_right_days(
    crew: Crew, browser: Browser, artifacts_dir: Path
) -> None:
    page = _page(browser, crew, "ann")
    page.goto("/schedules")
    expect(page.locator("#new-schedule-create")).to_be_visible()
    _choose(page, page.locator("#new-schedule-team"), crew.team)
    page.fill("#new-schedule-name", f"Primary {crew.team}")
    page.fill("#new-schedule-timezone", "Europe/Berlin")
    page.click("#new-schedule-create")
    expect(page).to_have_url(re.compile(r"/schedules/\d+"))
    expect(page.locator("#schedule-name")).to_have_text(f"Primary {crew.team}")
    schedule_id = int(page.url.rstrip("/").rsplit("/", 1)[-1])

    # A weekly rotation Ann → Bob → Cleo, handing off on Mondays 09:00 Berlin time, from 7 Jan 2030.
    page.click("#add-layer")
    expect(page.locator("#layer-editor")).to_be_visible()
    page.fill("#e-name", "Weekly primary")
    page.fill("#e-start", "2030-01-07T09:00")
    page.fill("#e-handoff", "09:00")
    for who in ("ann", "bob", "cleo"):
        _choose(page, page.locator("#e-add-participant"), crew.names[who])
    expect(page.locator(".participant-name")).to_have_text([crew.names[w] for w in ("ann", "bob", "cleo")])
    # The live preview shows the next shifts before anything is saved.
    preview = page.locator(".preview-who")
    expect(preview.nth(0)).to_have_text(crew.names["ann"])
    expect(preview.nth(1)).to_have_text(crew.names["bob"])
    expect(preview.nth(2)).to_have_text(crew.names["cleo"])
    expect(preview.nth(3)).to_have_text(crew.names["ann"])
    expect(page.locator("#layer-preview")).to_contain_text("Mon 2030-01-07 08:00")  # 09:00 Berlin = 08:00 UTC
    page.click("#layer-save")
    expect(page.locator("#layer-editor")).to_be_hidden()
    expect(page.locator(".layer-participants")).to_have_text(
        " → ".join(crew.names[w] for w in ("ann", "bob", "cleo"))
    )

    # Week of 14 Jan (the viewer's zone is UTC): Ann until Monday 08:00 UTC, then Bob all week.
    page.goto(f"/schedules/{schedule_id}?view=week&date=2030-01-16")
    expect(page.locator("#cal-range")).to_have_text(f"14 Jan {DASH} 20 Jan 2030")
    expect(page.locator("#cal-zones")).to_contain_text("UTC")
    expect(page.locator("#cal-zones")).to_contain_text("Europe/Berlin")
    monday = _day(page, "2030-01-14").locator(".shift-seg")
    expect(monday).to_have_count(2)
    expect(monday.nth(0)).to_have_attribute("data-who", crew.names["ann"])
    expect(monday.nth(0)).to_contain_text(f"00:00{DASH}08:00")
    expect(monday.nth(1)).to_have_attribute("data-who", crew.names["bob"])
    expect(monday.nth(1)).to_contain_text(f"08:00{DASH}24:00")
    expect(monday.nth(1)).to_contain_text(f"09:00{DASH}01:00 Europe/Berlin")  # the schedule's clock as well
    for date in ("2030-01-15", "2030-01-17", "2030-01-20"):
        expect(_day(page, date).locator(".shift-seg")).to_have_attribute("data-who", crew.names["bob"])
    # The week before starts the rotation: a gap until Ann's first shift.
    page.click("#cal-prev")
    expect(page.locator("#cal-range")).to_have_text(f"07 Jan {DASH} 13 Jan 2030")
    first = _day(page, "2030-01-07").locator(".shift-seg")
    expect(first.nth(0)).to_have_attribute("data-kind", "gap")
    expect(first.nth(1)).to_have_attribute("data-who", crew.names["ann"])
    # Month view: the third week is Cleo's, the fourth Ann's again.
    page.locator("#cal-view").get_by_role("radio", name="Month").click()
    expect(page.locator("#cal-range")).to_have_text("January 2030")
    expect(_day(page, "2030-01-24").locator(".shift-seg")).to_have_attribute("data-who", crew.names["cleo"])
    expect(_day(page, "2030-01-31").locator(".shift-seg")).to_have_attribute("data-who", crew.names["ann"])

    # An override chosen by clicking two days on the calendar (Vic is a viewer: Bob covers).
    _day(page, "2030-01-22").click()
    _day(page, "2030-01-23").click()
    expect(page.locator("#o-start")).to_have_value("2030-01-22T00:00")
    expect(page.locator("#o-end")).to_have_value("2030-01-24T00:00")
    _choose(page, page.locator("#o-user"), crew.names["bob"])
    page.click("#o-create")
    expect(page.locator(".override-row")).to_have_count(1)
    overridden = _day(page, "2030-01-23").locator(".shift-seg")
    expect(overridden).to_have_attribute("data-kind", "override")
    expect(overridden).to_have_attribute("data-who", crew.names["bob"])

    # A change made elsewhere (REST) reaches the open page over the bus, without a reload.
    engine = _engine(crew.app)
    with Session(engine, expire_on_commit=False) as session:
        _, key = api_keys.issue_key(session, user_id=crew.ids["ann"], name="e2e", scopes=["read", "write"])
        session.commit()
    engine.dispose()
    reply = httpx.post(
        f"{crew.app.base_url}/api/v1/schedules/{schedule_id}/overrides",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "user_id": crew.ids["cleo"],
            "start_at": "2030-01-29T00:00:00Z",
            "end_at": "2030-01-30T00:00:00Z",
        },
        timeout=15,
    )
    assert reply.status_code == 201, reply.text
    pushed = _day(page, "2030-01-29").locator(".shift-seg")
    expect(pushed).to_have_attribute("data-kind", "override")
    expect(pushed).to_have_attribute("data-who", crew.names["cleo"])
    _shot(page, artifacts_dir, "schedule-month", "desktop")


# --- escalation policies -----------------------------------------------------------------------


def test_two_step_policy_is_built_previewed_reordered_and_saved(crew: Crew, browser: Browser) -> None:
    page = _page(browser, crew, "ann")
    page.goto("/policies?new=1")
    expect(page.locator("#policy-name")).to_be_visible()
    name = f"Payments critical {crew.team}"
    page.fill("#policy-name", name)
    _choose(page, page.locator("#policy-team"), crew.team)
    steps = page.locator(".step-card")
    expect(steps).to_have_count(1)
    _choose(page, steps.nth(0).locator(".step-add-target"), crew.names["bob"])
    steps.nth(0).locator(".step-delay input").fill("10")
    page.click("#add-step")
    expect(steps).to_have_count(2)
    _choose(page, steps.nth(1).locator(".step-add-target"), crew.names["cleo"])
    steps.nth(1).locator(".step-important").click()
    page.fill("#policy-repeat", "1")

    page.click("#run-preview")
    rows = page.locator(".preview-row")
    expect(rows).to_have_count(4)  # two steps, run twice
    expect(rows.nth(0)).to_contain_text(crew.names["bob"])
    expect(rows.nth(0)).to_contain_text("+0 min")
    expect(rows.nth(1)).to_contain_text(crew.names["cleo"])
    expect(rows.nth(1)).to_contain_text("+10 min")
    expect(rows.nth(1)).to_contain_text("important")
    expect(rows.nth(2)).to_contain_text(crew.names["bob"])

    # Cleo first: the preview follows the unsaved order.
    steps.nth(1).locator(".step-up").click()
    page.click("#run-preview")
    expect(rows.nth(0)).to_contain_text(crew.names["cleo"])
    expect(rows.nth(1)).to_contain_text(crew.names["bob"])

    page.click("#policy-save")
    expect(page.locator(".policy-item", has_text=name)).to_be_visible()
    engine = _engine(crew.app)
    with Session(engine) as session:
        policy = session.exec(select(EscalationPolicy).where(EscalationPolicy.name == name)).one()
        stored = escalation_policies.steps_of(session, policy_ids=[require_id(policy)])[require_id(policy)]
        assert policy.repeat_count == 1 and policy.team_id == crew.team_id
        assert [(s.targets["user_ids"], s.important, s.delay_minutes) for s in stored] == [
            ([crew.ids["cleo"]], True, 5),
            ([crew.ids["bob"]], False, 10),
        ]
        # The previews wrote nothing: one policy of that name, no "preview …" leftovers.
        leftovers = session.exec(
            select(EscalationPolicy).where(col(EscalationPolicy.name).startswith("preview "))
        ).all()
        assert leftovers == []
    engine.dispose()


def test_a_viewer_cannot_save_the_server_refuses(crew: Crew, browser: Browser) -> None:
    engine = _engine(crew.app)
    with Session(engine, expire_on_commit=False) as session:
        dana = users.create_user(
            session, email=f"dana-{crew.team.split()[-1]}@example.com", name="Dana Demoted"
        )
        teams.set_membership(session, team_id=crew.team_id, user_id=require_id(dana), role=Role.ADMIN)
        policy, _ = escalation_policies.create_policy(
            session,
            team_id=crew.team_id,
            name=f"Guarded {crew.team}",
            steps=[{"kind": "notify_users", "targets": {"user_ids": [crew.ids["bob"]]}}],
        )
        session.commit()
    page = _page(browser, crew, "dana")
    page.goto(f"/policies?id={policy.id}")
    expect(page.locator("#policy-save")).to_be_visible()
    # Dana loses the admin role while the page is open: the buttons are still there, the server says no.
    with Session(engine) as session:
        membership = session.exec(
            select(TeamMembership).where(
                TeamMembership.team_id == crew.team_id, TeamMembership.user_id == require_id(dana)
            )
        ).one()
        membership.role = Role.VIEWER
        session.add(membership)
        session.commit()
    page.fill("#policy-name", "Renamed by a viewer")
    page.click("#policy-save")
    expect(page.locator("#policy-error")).to_contain_text(f"Not allowed to admin in team {crew.team_id}")
    with Session(engine) as session:
        assert session.get(EscalationPolicy, policy.id).name == f"Guarded {crew.team}"  # type: ignore[union-attr]
    # Reloaded, the page knows the new role: no save button any more.
    page.reload()
    expect(page.locator("#policy-name")).to_have_value(f"Guarded {crew.team}")
    expect(page.locator("#policy-save")).to_have_count(0)

    # The same for a schedule layer, as the (real) viewer Vic, who sees no editor at all.
    with Session(engine, expire_on_commit=False) as session:
        schedule = Schedule(team_id=crew.team_id, name=f"Viewer test {crew.team}", timezone="UTC")
        session.add(schedule)
        session.commit()
    vic = _page(browser, crew, "vic")
    vic.goto(f"/schedules/{schedule.id}")
    expect(vic.locator("#schedule-name")).to_be_visible()
    expect(vic.locator("#add-layer")).to_have_count(0)
    expect(vic.locator("#o-create")).to_have_count(0)
    engine.dispose()


# --- integrations ------------------------------------------------------------------------------


def test_integration_shows_each_senders_webhook_url_and_the_payloads_it_receives(
    crew: Crew, browser: Browser
) -> None:
    page = _page(browser, crew, "ann")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/integrations")
    expect(page.locator("#int-create")).to_be_visible()
    _choose(page, page.locator("#int-team"), crew.team)
    name = f"prom-{crew.team.split()[-1]}"
    page.fill("#int-name", name)
    page.click("#int-create")
    expect(page.locator("#token-shown")).to_be_visible()
    own = page.locator("#url-url .copy-value")
    expect(own).to_have_text(
        re.compile(rf"^{re.escape(crew.app.base_url)}/api/v1/webhooks/alertmanager/it_\S+$")
    )
    expect(page.locator("#url-grafana_oncall .copy-value")).to_contain_text(
        "/integrations/v1/alertmanager/it_"
    )
    expect(page.locator("#url-pagerduty_events_v2 .copy-value")).to_have_text(
        f"{crew.app.base_url}/api/v1/webhooks/pagerduty/enqueue"
    )
    expect(page.locator("#url-webhook .copy-value")).to_contain_text("/api/v1/webhooks/webhook/it_")
    url = own.inner_text()
    page.locator("#url-url .copy-button").click()
    assert page.evaluate("navigator.clipboard.readText()") == url

    # A real Alertmanager-style delivery to that URL shows up among the last payloads.
    fingerprint = uuid.uuid4().hex[:16]
    body = {
        "receiver": "sentinel",
        "status": "firing",
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "DiskFull", "severity": "warning", "instance": "db-9"},
                "annotations": {"summary": "Disk full on db-9"},
                "startsAt": dt.datetime.now(dt.UTC).isoformat(),
                "fingerprint": fingerprint,
            }
        ],
    }
    reply = httpx.post(url, json=body, timeout=15)
    assert reply.status_code == 202, reply.text
    page.click("#payloads-refresh")
    item = page.locator(".payload-item").first
    expect(item).to_contain_text("created")
    expect(item).to_contain_text(fingerprint)

    page.click("#int-test")
    expect(page.locator(".payload-item").first).to_contain_text(f"Test alert for {name}")
    expect(page.locator(".payload-item").first).to_contain_text('"sentinel_test": true')
    engine = _engine(crew.app)
    with Session(engine) as session:
        assert session.exec(select(Integration).where(Integration.name == name)).one().team_id == crew.team_id
    engine.dispose()


# --- settings ----------------------------------------------------------------------------------


def _verification_code(crew: Crew, phone: str) -> str:
    engine = _engine(crew.app)
    with Session(engine) as session:
        row = session.exec(
            select(Notification)
            .where(Notification.purpose == "verification", Notification.target == phone)
            .order_by(col(Notification.id).desc())
        ).first()
        assert row is not None
        payload = json.dumps(row.payload)
    engine.dispose()
    match = re.search(r"\b(\d{6})\b", payload)
    assert match is not None, payload
    return match.group(1)


def test_contact_method_is_verified_with_the_code_from_the_outbox(crew: Crew, browser: Browser) -> None:
    page = _page(browser, crew, "bob")
    page.goto("/settings")
    expect(page.locator("#contact-add")).to_be_visible()
    phone = f"+1415555{uuid.uuid4().int % 10_000:04d}"
    page.fill("#contact-value", phone)
    page.fill("#contact-label", "Mobile")
    page.click("#contact-add")
    row = page.locator(".contact-row", has_text=phone)
    expect(row).to_contain_text("not verified")
    row.locator(".contact-send-code").click()
    expect(row).to_contain_text("code sent")
    row.locator(".contact-code input").fill(
        "000000" if _verification_code(crew, phone) != "000000" else "111111"
    )
    row.locator(".contact-verify").click()
    expect(page.locator("#settings-error")).to_contain_text("Wrong verification code (4 attempts left)")
    row.locator(".contact-code input").fill(_verification_code(crew, phone))
    row.locator(".contact-verify").click()
    expect(row.locator(".contact-verified")).to_be_visible()


# --- screenshots -------------------------------------------------------------------------------


def test_screenshots_of_every_configuration_page(crew: Crew, browser: Browser, artifacts_dir: Path) -> None:
    schedule_id, policy_id = crew.schedule_id, crew.policy_id
    pages = [
        ("schedules", "/schedules", "#schedules-table"),
        ("schedule", f"/schedules/{schedule_id}?date=2030-01-16", "#calendar-week"),
        ("policies", f"/policies?id={policy_id}", "#policy-steps"),
        ("teams", f"/teams?team={crew.team_id}", "#members-table"),
        ("integrations", "/integrations", "#webhook-urls"),
        ("settings", "/settings", "#contact-add"),
    ]
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = _page(browser, crew, "ann", viewport)
        for name, path, ready in pages:
            page.goto(path)
            expect(page.locator(ready)).to_be_visible()
            if name == "policies":
                page.click("#run-preview")
                expect(page.locator(".preview-row").first).to_be_visible()
            _shot(page, artifacts_dir, name, size)
            # Nothing may stick out sideways at phone width (wide tables scroll inside their box).
            if size == "phone":
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"] + 1, f"{name} is {width}px wide at phone width"
        page.context.close()
