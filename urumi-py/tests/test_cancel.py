"""A cancelled call never leaves a store half done; a cancelled wait stops at once."""

from __future__ import annotations

import asyncio
import time

import pytest

import urumi
from conftest import unique


async def settled(prov: urumi.Provisioner, name: str) -> urumi.Store | None:
    """The store once a detached write has had its time: a create cancelled after it was
    handed to the core still lands, on its own task, which a loaded machine may run late;
    so absent means absent for 10 s."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return await prov.get(name)
        except urumi.NotFoundError:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.2)


async def test_cancelled_create_is_absent_or_complete(
    prov: urumi.Provisioner, cleanup: list[str]
) -> None:
    outcomes = {"absent": 0, "complete": 0}
    for delay in [0.0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.05]:
        name = unique("py-cancel")
        cleanup.append(name)
        try:
            await asyncio.wait_for(prov.create(name, idempotency_key=f"c-{name}"), timeout=delay)
        except asyncio.TimeoutError:
            pass
        store = await settled(prov, name)
        if store is None:
            outcomes["absent"] += 1
            trail = await prov.audit(store=name, action="store.create")
            assert len(trail) == 0, f"{name}: an audit event without its store"
            continue
        outcomes["complete"] += 1
        trail = await prov.events(name, limit=100)
        creates = [e for e in trail if e.action == "store.create"]
        assert len(creates) == 1, f"{name} exists without exactly one store.create: {trail.items}"
        assert store.status in ("Pending", "Provisioning", "Ready")
        replay = await prov.create(name, idempotency_key=f"c-{name}")
        assert replay.name == name, "the key replays the first outcome"
    assert sum(outcomes.values()) == 8, outcomes
    print(f"\ncancelled creates: {outcomes}")


async def test_cancelling_wait_stops_it(prov: urumi.Provisioner, cleanup: list[str]) -> None:
    name = unique("py-cwait")
    cleanup.append(name)
    await prov.create(name)
    started = time.monotonic()
    task = asyncio.ensure_future(prov.wait(name, status="Deleting", timeout=300))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 5
    assert (await prov.get(name)).name == name, "the provisioner still answers"
