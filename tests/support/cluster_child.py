"""Child process for tests/test_ray_cluster.py: run escalation hosts on an existing Ray cluster.

Usage: python -m tests.support.cluster_child <ray address> <database url> <alert id>
Prints "paged <n>" once the alert's first step wrote its outbox rows, or exits 1 after a minute.
"""

from __future__ import annotations

import sys
import time

import ray
from sqlmodel import Session, select

from actors.relay import Relay
from sentinel_app.db import create_db_engine
from sentinel_app.models import Notification
from sentinel_app.settings import Settings


def main() -> int:
    """Create the hosts on the cluster at argv[1] and wait for the alert's first page."""
    address, url, alert_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ray.init(address=address, namespace="sentinel-cluster-test", log_to_driver=False)
    relay = Relay(Settings(database_url=url, ray_address=address, escalation_hosts=1, dispatchers=0))
    relay.ensure_hosts(dispatchers=False)
    ray.get([h.wait_ready.remote() for h in relay.hosts], timeout=60)
    engine = create_db_engine(url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with Session(engine) as session:
            rows = session.exec(select(Notification).where(Notification.alert_id == alert_id)).all()
        if rows:
            print(f"paged {len(rows)}", flush=True)
            for host in [*relay.hosts, *relay.schedule_hosts]:
                ray.kill(host, no_restart=True)
            return 0
        time.sleep(0.2)
    return 1


if __name__ == "__main__":
    sys.exit(main())
