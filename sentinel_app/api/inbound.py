"""Where people answer alerts from the channel that reached them: Twilio, Slack and action links.

None of these routes takes an API key. Twilio callbacks are authenticated by Twilio's request
signature over the public URL (`settings.base_url` + path + query), Slack's by its signing
secret and a fresh timestamp, action links by their own HMAC. A request that fails that check is
answered 401 (403 for a tampered link) and changes nothing. Past the check, every answer is in
the channel's own format (TwiML, Slack JSON, an HTML page) — including "already resolved" or
"you may not act on this alert" — so a person never sees a provider's generic error.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from sentinel_app.api.deps import engine_of
from sentinel_app.api.errors import ApiError
from sentinel_app.db import session_scope, utcnow
from sentinel_app.models import ActionLinkUse, Alert
from sentinel_app.notify.base import InboundRejected
from sentinel_app.notify.links import LINK_PATH, ActionLinks, LinkIntent, LinkRejection
from sentinel_app.notify.slack_inbound import ACTIONS_PATH, parse_interaction
from sentinel_app.notify.twilio_inbound import (
    GATHER_PATH,
    SMS_PATH,
    STATUS_PATH,
    parse_gather,
    parse_inbound_sms,
    sms_reply_twiml,
    verify_twilio_request,
    voice_reply_twiml,
)
from sentinel_app.services import inbound
from sentinel_app.services.inbound import Outcome, Result
from sentinel_app.settings import get_settings

router = APIRouter(tags=["notify"])
log = logging.getLogger(__name__)

T = TypeVar("T")

_FORM = "application/x-www-form-urlencoded"
_SIGNATURE_REASONS = frozenset({"missing_signature", "bad_signature", "stale_timestamp"})


def _in_write_session(request: Request, work: Callable[..., T], /, **kwargs: Any) -> T:
    with session_scope(write=True, engine=engine_of(request)) as session:
        return work(session, **kwargs)


def _in_read_session(request: Request, work: Callable[..., T], /, **kwargs: Any) -> T:
    with session_scope(engine=engine_of(request)) as session:
        return work(session, **kwargs)


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded body of a provider callback (Twilio and Slack both post forms)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != _FORM:
        raise ApiError(415, f"expected {_FORM}, got {content_type or 'nothing'}", field="content-type")
    body = await request.body()
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not UTF-8", field="body") from None


# --- Twilio ------------------------------------------------------------------------------------


def _public_url(request: Request, path: str) -> str:
    # Twilio signed the URL it called: the public one, which a proxy in front of us hides.
    query = request.url.query
    return f"{get_settings().base_url}{path}{'?' + query if query else ''}"


def _verify_twilio(request: Request, url: str, form: dict[str, str]) -> None:
    token = get_settings().twilio_auth_token.get_secret_value()
    if not token:
        log.warning("inbound: Twilio callback refused: SENTINEL_TWILIO_AUTH_TOKEN is not set")
        raise ApiError(401, "Twilio callbacks are not configured on this server", field="X-Twilio-Signature")
    try:
        verify_twilio_request(token, url, form, request.headers)
    except InboundRejected as exc:
        log.warning("inbound: Twilio callback to %s refused: %s", url, exc.reason)
        raise ApiError(
            401, f"Twilio request signature refused ({exc.reason})", field="X-Twilio-Signature"
        ) from None


def _twiml(xml: str) -> Response:
    return Response(content=xml, media_type="application/xml")


def _spoken(text: str) -> str:
    return text.replace("#", "number ")


@router.post(SMS_PATH, summary="Twilio: an SMS reply such as 1a or 1r")
async def twilio_sms(request: Request) -> Response:
    """Acknowledge, resolve or escalate by SMS reply; answers with TwiML."""
    form = await _form(request)
    _verify_twilio(request, _public_url(request, SMS_PATH), form)
    try:
        intent = parse_inbound_sms(form)
    except InboundRejected:
        intent = None
    outcome: Outcome = await run_in_threadpool(
        _in_write_session,
        request,
        inbound.answer_sms,
        sender=form.get("From", ""),
        intent=intent,
        now=utcnow(),
    )
    log.info("inbound: SMS reply: %s (alert %s)", outcome.result, outcome.alert_id)
    return _twiml(sms_reply_twiml(outcome.text))


@router.post(GATHER_PATH, summary="Twilio: a key pressed during an alert call")
async def twilio_gather(request: Request) -> Response:
    """1 acknowledges, 2 escalates; answers with TwiML that says what happened."""
    form = await _form(request)
    url = _public_url(request, GATHER_PATH)
    _verify_twilio(request, url, form)
    try:
        intent = parse_gather(form, url)
    except InboundRejected:
        return _twiml(voice_reply_twiml("Sorry, that key does nothing. Goodbye."))
    outcome: Outcome = await run_in_threadpool(
        _in_write_session, request, inbound.answer_gather, intent=intent, now=utcnow()
    )
    log.info("inbound: key press: %s (alert %s)", outcome.result, outcome.alert_id)
    return _twiml(voice_reply_twiml(f"{_spoken(outcome.text)} Goodbye."))


@router.post(STATUS_PATH, status_code=204, summary="Twilio: SMS and call delivery receipts")
async def twilio_status(request: Request) -> Response:
    """Mark the outbox row delivered or failed and note it on the alert's timeline."""
    form = await _form(request)
    _verify_twilio(request, _public_url(request, STATUS_PATH), form)
    receipt = inbound.twilio_delivery_status(form)
    if receipt is not None:
        await run_in_threadpool(
            _in_write_session, request, inbound.record_delivery_status, receipt=receipt, now=utcnow()
        )
    return Response(status_code=204)


# --- Slack -------------------------------------------------------------------------------------


def _slack_reply(text: str) -> JSONResponse:
    # Only the presser sees it; the alert message itself is updated by the outbox.
    return JSONResponse({"response_type": "ephemeral", "replace_original": False, "text": text})


@router.post(ACTIONS_PATH, summary="Slack: a Sentinel button pressed (interactivity request URL)")
async def slack_actions(request: Request) -> Response:
    """Acknowledge or resolve from a Slack alert message; answers within Slack's 3 s."""
    secret = get_settings().slack_signing_secret.get_secret_value()
    if not secret:
        log.warning("inbound: Slack action refused: SENTINEL_SLACK_SIGNING_SECRET is not set")
        raise ApiError(401, "Slack actions are not configured on this server", field="X-Slack-Signature")
    body = await request.body()
    now = utcnow()
    try:
        intent = parse_interaction(secret, body, request.headers, now=now.timestamp())
    except InboundRejected as exc:
        if exc.reason in _SIGNATURE_REASONS:
            log.warning("inbound: Slack action refused: %s", exc.reason)
            raise ApiError(401, f"Slack request refused ({exc.reason})", field="X-Slack-Signature") from None
        if exc.reason == "malformed":
            raise ApiError(400, "no Slack interaction payload", field="payload") from None
        return _slack_reply("Fangorn Sentinel does not handle this action.")
    outcome: Outcome = await run_in_threadpool(
        _in_write_session, request, inbound.answer_slack, intent=intent, now=now
    )
    log.info("inbound: Slack button: %s (alert %s)", outcome.result, outcome.alert_id)
    return _slack_reply(outcome.text)


# --- action links ------------------------------------------------------------------------------

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    # The token is in the URL: never hand it to another site.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2933}"
    "h1{font-size:1.4rem}button{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:.3rem;"
    "background:#2f6f4f;color:#fff;cursor:pointer}"
)
_ACTION_WORDS = {"acknowledge": "Acknowledge", "resolve": "Resolve", "escalate": "Escalate"}
_REJECTIONS: dict[str, tuple[int, str, str]] = {
    "malformed": (400, "Invalid link", "This link is not valid. Open the alert in Fangorn Sentinel instead."),
    "bad_signature": (
        403,
        "Invalid link",
        "This link is not valid. Open the alert in Fangorn Sentinel instead.",
    ),
    "expired": (400, "Link expired", "This link has expired. Open the alert in Fangorn Sentinel instead."),
    "already_used": (409, "Link already used", "This link was already used."),
}
_OUTCOME_STATUS = {
    Result.DONE: 200,
    Result.CONFLICT: 409,
    Result.LINK_USED: 409,
    Result.NOT_ALLOWED: 403,
    Result.NOT_FOUND: 404,
    Result.UNKNOWN_SENDER: 403,
    Result.UNKNOWN_REPLY: 400,
}


def _page(status: int, title: str, message: str, *, form_button: str | None = None) -> HTMLResponse:
    form = ""
    if form_button is not None:
        # No action attribute: the form posts back to this very URL (path or ?token= form).
        form = f'<form method="post"><button type="submit">{html.escape(form_button)}</button></form>'
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{html.escape(title)} · Fangorn Sentinel</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{form}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_PAGE_HEADERS)


def _verify_link(token: str) -> LinkIntent | HTMLResponse:
    settings = get_settings()
    checked = ActionLinks(settings.resolved_secret_key(), settings.base_url).verify(token, now=utcnow())
    if isinstance(checked, LinkRejection):
        log.info("inbound: action link refused: %s", checked.reason)
        status, title, message = _REJECTIONS[checked.reason]
        return _page(status, title, message)
    return checked


def _preview(session: Session, *, link: LinkIntent) -> tuple[Alert | None, bool]:
    alert = session.get(Alert, link.alert_id)
    used = session.exec(select(ActionLinkUse.id).where(ActionLinkUse.nonce == link.nonce)).first()
    return alert, used is not None


async def _confirm(request: Request, token: str) -> HTMLResponse:
    link = _verify_link(token)
    if isinstance(link, HTMLResponse):
        return link
    alert, used = await run_in_threadpool(_in_read_session, request, _preview, link=link)
    if used:
        return _page(*_REJECTIONS["already_used"])
    if alert is None:
        return _page(404, "Alert not found", f"Alert #{link.alert_id} was not found.")
    word = _ACTION_WORDS[link.intent]
    # Mail scanners fetch links: this page only asks, the POST acts.
    return _page(
        200,
        f"{word} alert #{alert.id}?",
        f"{alert.title} (currently {alert.status}).",
        form_button=f"{word} alert #{alert.id}",
    )


async def _act(request: Request, token: str) -> HTMLResponse:
    link = _verify_link(token)
    if isinstance(link, HTMLResponse):
        return link
    outcome: Outcome = await run_in_threadpool(
        _in_write_session, request, inbound.act_by_link, link=link, now=utcnow()
    )
    log.info("inbound: action link: %s (alert %s)", outcome.result, outcome.alert_id)
    titles = {Result.DONE: "Done", Result.LINK_USED: "Link already used"}
    return _page(_OUTCOME_STATUS[outcome.result], titles.get(outcome.result, "Nothing changed"), outcome.text)


@router.get(f"{LINK_PATH}/{{token}}", response_class=HTMLResponse, summary="Action link: confirmation page")
async def action_link_page(token: str, request: Request) -> HTMLResponse:
    """Show what the link would do, with a button; opening the link changes nothing."""
    return await _confirm(request, token)


@router.post(f"{LINK_PATH}/{{token}}", response_class=HTMLResponse, summary="Action link: act")
async def action_link_act(token: str, request: Request) -> HTMLResponse:
    """Apply the link's action once, as the person it was sent to."""
    return await _act(request, token)


@router.get(LINK_PATH, response_class=HTMLResponse, include_in_schema=False)
async def action_link_page_query(request: Request, token: str = "") -> HTMLResponse:
    """The confirmation page for links that carry the token as `?token=`."""
    return await _confirm(request, token)


@router.post(LINK_PATH, response_class=HTMLResponse, include_in_schema=False)
async def action_link_act_query(request: Request, token: str = "") -> HTMLResponse:
    """Act on a link that carries the token as `?token=`."""
    return await _act(request, token)
