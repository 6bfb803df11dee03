"""The change feed: followed live, then resumed from a cursor with nothing lost or repeated."""

from __future__ import annotations

import asyncio

import urumi
from conftest import FAST, GONE_TIMEOUT, READY_TIMEOUT, unique


async def collect_until_deleted(stream: urumi.ChangeStream, name: str) -> list[urumi.Change]:
    seen: list[urumi.Change] = []
    async for change in stream:
        if change.store.name != name:
            continue
        seen.append(change)
        if change.kind == "deleted":
            break
    return seen


async def test_change_stream_resumes_from_a_cursor(prov: urumi.Provisioner) -> None:
    name = unique("py-feed")
    live = prov.changes()
    follower = asyncio.ensure_future(
        asyncio.wait_for(collect_until_deleted(live, name), timeout=READY_TIMEOUT + GONE_TIMEOUT)
    )
    await asyncio.sleep(0.3)
    await prov.create(name)
    await prov.wait(name, "Ready", READY_TIMEOUT)
    await prov.delete(name)
    await prov.wait_deleted(name, GONE_TIMEOUT)
    seen = await follower
    await live.aclose()

    kinds = [c.kind for c in seen]
    assert kinds[0] == "created" and kinds[-1] == "deleted" and "updated" in kinds
    seqs = [c.seq for c in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert any(c.store.status == "Ready" for c in seen)
    d = seen[0].to_dict()
    assert set(d) == {"seq", "at", "kind", "store"} and d["store"]["name"] == name

    # Resume after the first change: every later change of this store, none twice.
    resumed = await asyncio.wait_for(
        collect_until_deleted(prov.changes(after=seen[0].seq), name), timeout=60
    )
    assert [c.seq for c in resumed] == seqs[1:]
    assert [c.store.version for c in resumed] == [c.store.version for c in seen[1:]]


def test_sync_change_stream_replays(state_dir: str) -> None:
    with urumi.SyncProvisioner(f"sqlite://{state_dir}/sync-feed.db", settings=FAST) as p:
        name = unique("py-sfeed")
        p.create(name)
        try:
            stream = p.changes(after=0)
            first = next(stream)
            assert (first.kind, first.store.name, first.store.status) == ("created", name, "Pending")
            stream.close()
            assert list(stream) == [], "a closed stream ends"
        finally:
            p.delete(name)
            p.wait_deleted(name, GONE_TIMEOUT)
