"""The `sentinel` command: run the server, migrate, create the first admin, seed demo data."""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa

from sentinel_app.settings import ConfigError, Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
# How long a server must have run for a crash to count as new rather than a crash loop.
_STABLE_AFTER_S = 60.0


def _fail(message: str, code: int = 2) -> int:
    print(f"sentinel: error: {message}", file=sys.stderr)
    return code


def _checked_engine(settings: Settings) -> sa.Engine:
    from sentinel_app.db import check_database, create_db_engine

    engine = create_db_engine(settings.effective_database_url)
    check_database(engine)
    return engine


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Migrate the database to the newest schema."""
    from sentinel_app.migrations import current_revision, upgrade_to_head

    settings = get_settings()
    engine = _checked_engine(settings)
    before = current_revision(engine)
    upgrade_to_head(settings.effective_database_url)
    after = current_revision(engine)
    engine.dispose()
    print(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))
    return 0


def cmd_admin_create(args: argparse.Namespace) -> int:
    """Create a global administrator."""
    from sentinel_app.db import session_scope
    from sentinel_app.services import users

    settings = get_settings()
    engine = _checked_engine(settings)
    _require_schema(engine)
    password, generated = args.password, False
    if not password:
        if sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Repeat password: "):
                return _fail("passwords do not match", 1)
        else:
            password, generated = secrets.token_urlsafe(15), True
    with session_scope(write=True, engine=engine) as session:
        user = users.create_user(
            session,
            email=args.email,
            name=args.name or args.email.split("@")[0],
            password=password,
            is_admin=True,
            timezone=args.timezone,
        )
    print(f"created administrator {user.email} (id {user.id})")
    if generated:
        print(f"password: {password}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Seed demo data (safe to run again) and print how to use it."""
    from sentinel_app.db import session_scope
    from sentinel_app.services.demo import seed_demo

    settings = get_settings()
    engine = _checked_engine(settings)
    _require_schema(engine)
    with session_scope(write=True, engine=engine) as session:
        result = seed_demo(session, secret_key=settings.resolved_secret_key(), base_url=settings.base_url)
    print(("Created" if result.created else "Demo data already present;") + " demo team 'Platform SRE'.")
    print(f"  sign in:        {result.login_email} / {result.login_password}")
    print(f"  API key:        {result.api_key}")
    for label, name in (("webhook", "url"), ("grafana_oncall", "grafana_oncall")):
        print(f"  {label + ':':<16}{result.webhook_urls[name]}")
    print(
        f"  try:            curl -X POST -H 'Content-Type: application/json' --data @alert.json {result.webhook_urls['url']}"
    )
    return 0


def _require_schema(engine: sa.Engine) -> None:
    from sentinel_app.migrations import current_revision, head_revision, upgrade_to_head

    if current_revision(engine) != head_revision():
        upgrade_to_head(str(engine.url.render_as_string(hide_password=False)))


def _server_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SENTINEL_HOST=settings.host,
        SENTINEL_PORT=str(settings.port),
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_CHECK_LATEST_VERSION="false",
        RAY_USAGE_STATS_ENABLED="0",
        # Every process of the app must agree on one secret (sessions, signed links).
        SENTINEL_SECRET_KEY=settings.resolved_secret_key(),
    )
    tools_bin = ROOT / ".tools" / "node_modules" / ".bin"
    if tools_bin.is_dir():
        env["PATH"] = f"{tools_bin}{os.pathsep}{env.get('PATH', '')}"
    return env


def cmd_up(args: argparse.Namespace) -> int:
    """Check the configuration, migrate, then run and supervise the server."""
    from sentinel_app.ray_runtime import check_ray_address

    if args.host:
        os.environ["SENTINEL_HOST"] = args.host
    if args.port:
        os.environ["SENTINEL_PORT"] = str(args.port)
    get_settings.cache_clear()
    settings = get_settings()
    check_ray_address(settings.ray_address)
    cmd_db_upgrade(args)
    command = [
        sys.executable,
        "-m",
        "reflex",
        "run",
        "--env",
        "prod",
        "--single-port",
        "--backend-host",
        settings.host,
        "--backend-port",
        str(settings.port),
        "--frontend-port",
        str(settings.port),
    ]
    print(
        f"Fangorn Sentinel starting on {settings.base_url} (listening on {settings.host}:{settings.port})",
        flush=True,
    )
    return supervise(command, env=_server_env(settings), cwd=ROOT, restart=not args.no_restart)


def supervise(command: Sequence[str], *, env: dict[str, str], cwd: Path, restart: bool = True) -> int:
    """Run `command`, restarting it with backoff when it dies; forward SIGINT/SIGTERM."""
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            # Only the server itself: its lifespan shuts Ray down in order.
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    backoff = 1.0
    while True:
        began = time.monotonic()
        child = subprocess.Popen(list(command), env=env, cwd=cwd, start_new_session=True)
        code = _wait(child)
        if stopping:
            return 0
        if not restart:
            return code
        if time.monotonic() - began > _STABLE_AFTER_S:
            backoff = 1.0
        print(
            f"sentinel: server exited with code {code}; restarting in {backoff:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(backoff)
        backoff = min(backoff * 2, 30.0)


def _wait(child: subprocess.Popen[bytes]) -> int:
    """Wait for the server, then make sure nothing it started outlives it."""
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGTERM)
        return child.wait(timeout=30)
    finally:
        _reap_group(child.pid)


def _reap_group(pgid: int) -> None:
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="sentinel", description="Fangorn Sentinel on-call server")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="migrate and run the server (restarting it if it dies)")
    up.add_argument("--host", help="interface to listen on (default SENTINEL_HOST or 0.0.0.0)")
    up.add_argument("--port", type=int, help="port for UI, API and webhooks (default SENTINEL_PORT or 3000)")
    up.add_argument("--no-restart", action="store_true", help="exit when the server exits")
    up.set_defaults(func=cmd_up)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="migrate to the newest schema").set_defaults(func=cmd_db_upgrade)

    admin = sub.add_parser("admin", help="administrators").add_subparsers(dest="admin_command", required=True)
    create = admin.add_parser("create", help="create a global administrator")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="")
    create.add_argument("--password", default="", help="prompted for (or generated and printed) when omitted")
    create.add_argument("--timezone", default="UTC")
    create.set_defaults(func=cmd_admin_create)

    sub.add_parser("demo", help="seed a demo team (safe to run twice)").set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sentinel` console script."""
    from pydantic import ValidationError

    from sentinel_app.services.errors import ServiceError

    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except ConfigError as exc:
        return _fail(str(exc))
    except ValidationError as exc:
        first = exc.errors()[0]
        setting = "SENTINEL_" + str(first["loc"][0]).upper() if first["loc"] else "configuration"
        return _fail(f"{setting}: {first['msg']}")
    except ServiceError as exc:
        return _fail(f"{exc.field + ': ' if exc.field else ''}{exc.message}", 1)


if __name__ == "__main__":
    sys.exit(main())
