"""Create -> Ready -> delete on the local cluster, async on SQLite and sync on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime

import pytest

import urumi
from conftest import FAST, GONE_TIMEOUT, READY_TIMEOUT, UNLIMITED, postgres_schema_url, unique

STORE_KEYS = {
    "name", "tenant", "engine", "plan", "status", "step", "message", "namespace", "urls",
    "createdAt", "updatedAt", "readyAt", "provisioningSeconds", "attempts", "version",
    "suspended", "chart",
}


async def test_create_ready_delete(prov: urumi.Provisioner) -> None:
    name = unique("py-life")
    order = f"order-{name}"
    store = await prov.create(name, plan="small", idempotency_key=order)
    assert store.name == name and store.status == "Pending" and store.plan == "small"
    assert store.tenant == "default" and store.engine == "woocommerce"
    again = await prov.create(name, plan="small", idempotency_key=order)
    assert again.name == name and again.version == store.version, "the key replays"

    ready = await prov.wait(name, status="Ready", timeout=READY_TIMEOUT)
    assert ready.status == "Ready" and ready.step == "done"
    assert ready.urls.storefront and name in ready.urls.storefront
    assert isinstance(ready.ready_at, datetime.datetime) and ready.ready_at.tzinfo is not None
    assert ready.provisioning_seconds is not None and ready.provisioning_seconds > 0
    d = ready.to_dict()
    assert set(d) == STORE_KEYS
    assert d["status"] == "Ready" and d["urls"]["storefront"] == ready.urls.storefront
    assert d["version"] == ready.version and isinstance(d["createdAt"], str)
    assert repr(ready).startswith("Store(name=")
    assert ready == await prov.get(name)

    assert ready.chart is not None and ready.chart["outdated"] is False and ready.chart["version"]
    same = await prov.upgrade(name)
    assert same.version == ready.version and same.status == "Ready", "not outdated: unchanged"
    revisions = await prov.revisions(name)
    assert [r["status"] for r in revisions][-1:] == ["deployed"], revisions
    assert revisions[-1]["chartVersion"] == ready.chart["version"]

    creds = await prov.credentials(name)
    assert creds.username and creds.password
    assert creds.password not in repr(creds) and creds.password not in str(creds)
    assert "<hidden>" in repr(creds)

    usage = await prov.usage(name)
    assert usage["name"] == name and usage["plan"] == "small"
    pods = next(r for r in usage["resources"] if r["resource"] == "pods")
    assert pods == {"resource": "pods", "unit": "count", "used": pods["used"], "hard": 10}
    assert pods["used"] >= 2, usage
    assert usage["volumes"] and all(v["phase"] for v in usage["volumes"])
    updating = await prov.update(name, plan="medium", idempotency_key=f"plan-{name}")
    assert updating.status == "Updating" and updating.plan == "medium"
    medium = await prov.wait(name, status="Ready", timeout=READY_TIMEOUT)
    assert medium.plan == "medium" and medium.ready_at == ready.ready_at
    grown = await prov.usage(name)
    assert next(r for r in grown["resources"] if r["resource"] == "pods")["hard"] == 20
    with pytest.raises(urumi.InvalidSpecError):
        await prov.update(name, plan="huge")
    suspending = await prov.suspend(name, idempotency_key=f"suspend-{name}")
    assert suspending.status == "Updating" and suspending.suspended
    suspended = await prov.wait(name, status="Ready", timeout=READY_TIMEOUT)
    assert suspended.suspended and "suspended" in suspended.message
    again = await prov.suspend(name)
    assert again.version == suspended.version, "suspending a suspended store changes nothing"
    with pytest.raises(urumi.ConflictError):
        await prov.verify(name)
    resuming = await prov.resume(name)
    assert resuming.status == "Updating" and not resuming.suspended
    resumed = await prov.wait(name, status="Ready", timeout=READY_TIMEOUT)
    assert not resumed.suspended and resumed.to_dict()["suspended"] is False
    with pytest.raises(urumi.PreconditionFailedError):
        await prov.suspend(name, if_version=resumed.version - 1)
    assert (await prov.get(name)).version == resumed.version, "a failed precondition changes nothing"
    assert (await prov.credentials(name)).password == creds.password, "credentials kept"
    plans = prov.plans()
    assert [p["name"] for p in plans] == ["small", "medium", "large"]
    assert plans[0]["pods"] == 10 and plans[2]["cpuRequest"] == "4000m"

    page = await prov.list(status="Ready", limit=100)
    assert name in [s.name for s in page]
    trail = await prov.events(name, limit=100)
    actions = {e.action for e in trail.items}
    assert {"store.create", "store.ready", "store.credentials.read", "store.update",
            "store.suspend", "store.resume"} <= actions
    assert all(creds.password not in str(e.to_dict()) for e in trail)
    create = next(e for e in trail if e.action == "store.create")
    assert create.actor == "pytest" and create.outcome == "success"

    gone = await prov.delete(name)
    assert gone.status == "Deleting"
    await prov.wait_deleted(name, timeout=GONE_TIMEOUT)
    with pytest.raises(urumi.NotFoundError):
        await prov.get(name)


def test_sync_lifecycle_on_postgres() -> None:
    url = postgres_schema_url()
    with urumi.SyncProvisioner(url, settings=FAST, limits=UNLIMITED) as p:
        p.check_ready()
        name = unique("py-sync")
        try:
            assert p.create(name, idempotency_key=f"order-{name}").status == "Pending"
            assert p.wait(name, "Ready", READY_TIMEOUT).status == "Ready"
            assert [s.name for s in p.list()] == [name]
            used = {r["resource"]: r for r in p.usage(name)["resources"]}
            assert used["requests.cpu"]["unit"] == "millicores" and used["requests.cpu"]["used"] > 0
            assert [plan["name"] for plan in p.plans()] == ["small", "medium", "large"]
        finally:
            p.delete(name)
            p.wait_deleted(name, GONE_TIMEOUT)
        with pytest.raises(urumi.NotFoundError):
            p.get(name)
    assert p.closed
    with pytest.raises(urumi.UnavailableError):
        p.get(name)


async def test_async_open_and_context_manager(state_dir: str) -> None:
    async with await urumi.Provisioner.open(
        f"sqlite://{state_dir}/open.db", settings=FAST, tenant="acme"
    ) as p:
        assert not p.closed and p.tenant == "acme"
        await p.check_ready()
        assert len(await p.list()) == 0
    assert p.closed
    with pytest.raises(urumi.UnavailableError):
        await p.get("anything")


async def test_tenant_scoped_handle_sees_only_its_stores(
    prov: urumi.Provisioner, cleanup: list[str]
) -> None:
    name = unique("py-scope")
    cleanup.append(name)
    await prov.create(name, tenant="globex")
    acme = prov.with_caller("acme")
    with pytest.raises(urumi.NotFoundError):
        await acme.get(name)
    assert name not in [s.name for s in await acme.list(limit=100)]
    globex = prov.with_caller("globex", actor="globex-billing")
    assert (await globex.get(name)).tenant == "globex"


async def test_closing_a_provisioner_ends_its_change_stream(state_dir: str) -> None:
    p = await urumi.Provisioner.open(f"sqlite://{state_dir}/close.db", settings=FAST)
    stream = p.changes()
    pending = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0.2)
    await p.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, timeout=30)
