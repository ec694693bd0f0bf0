"""Second process for the cross-process bus tests.

python -m tests.bus_child publish URL N   # commit N `child.tick`, one rolled back, then `child.done`
python -m tests.bus_child listen URL N    # print "ready", then the `i` of N `parent.tick` events
"""

from __future__ import annotations

import asyncio
import sys

from sqlmodel import Session

from sentinel_app.bus import PostgresBus
from sentinel_app.db import create_db_engine, session_scope


def publish(url: str, count: int) -> None:
    """Commit `count` ticks, roll one event back, then commit a final marker."""
    engine = create_db_engine(url)
    bus = PostgresBus(url)
    for i in range(count):
        with session_scope(engine=engine) as session:
            bus.publish(session, "child.tick", {"i": i}, key="child")
    with Session(engine) as session:
        bus.publish(session, "child.rolledback", {}, key="child")
        session.rollback()
    with session_scope(engine=engine) as session:
        bus.publish(session, "child.done", {}, key="child")
    engine.dispose()


async def listen(url: str, count: int) -> None:
    """Print the `i` of each `parent.tick` received, after announcing readiness."""
    bus = PostgresBus(url)
    await bus.start()
    try:
        async with bus.subscribe({"parent.tick"}) as events:
            print("ready", flush=True)
            for _ in range(count):
                event = await asyncio.wait_for(anext(events), 30)
                print(event.data["i"], flush=True)
    finally:
        await bus.stop()


if __name__ == "__main__":
    mode, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "publish":
        publish(url, n)
    else:
        asyncio.run(listen(url, n))
