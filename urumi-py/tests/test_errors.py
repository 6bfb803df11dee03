"""Every error kind arrives as its own class with its code."""

from __future__ import annotations

import builtins
import os

import pytest

import urumi
from conftest import FAST, READY_TIMEOUT, UNLIMITED, unique

NAMES = {
    "invalid_name": urumi.InvalidNameError,
    "invalid_spec": urumi.InvalidSpecError,
    "store_exists": urumi.StoreExistsError,
    "not_found": urumi.NotFoundError,
    "quota_exceeded": urumi.QuotaExceededError,
    "rate_limited": urumi.RateLimitedError,
    "conflict": urumi.ConflictError,
    "idempotency_mismatch": urumi.IdempotencyMismatchError,
    "idempotency_in_progress": urumi.IdempotencyInProgressError,
    "unauthorized": urumi.UnauthorizedError,
    "forbidden": urumi.ForbiddenError,
    "timeout": urumi.TimeoutError,
    "invalid_config": urumi.InvalidConfigError,
    "unavailable": urumi.UnavailableError,
    "unsupported": urumi.UnsupportedError,
    "internal": urumi.InternalError,
    "store_failed": urumi.StoreFailedError,
    "cursor_expired": urumi.CursorExpiredError,
    "managed_externally": urumi.ManagedExternallyError,
    "plan_too_small": urumi.PlanTooSmallError,
    "precondition_failed": urumi.PreconditionFailedError,
}


def test_every_core_code_has_its_own_class() -> None:
    assert len(urumi.ERROR_CODES) == len(set(urumi.ERROR_CODES)) >= 18
    assert set(urumi.ERROR_CLASSES) == set(urumi.ERROR_CODES), "a core kind has no class"
    assert set(NAMES) == set(urumi.ERROR_CODES), "the exported names cover every code"
    for code, cls in urumi.ERROR_CLASSES.items():
        assert cls is NAMES[code]
        assert issubclass(cls, urumi.UrumiError) and cls.code == code
        assert cls.__module__ == "urumi" and cls.__doc__
    assert len(set(urumi.ERROR_CLASSES.values())) == len(urumi.ERROR_CLASSES)
    assert issubclass(urumi.TimeoutError, builtins.TimeoutError)
    assert issubclass(urumi.UrumiError, Exception)


async def test_invalid_name_and_spec(prov: urumi.Provisioner) -> None:
    with pytest.raises(urumi.InvalidNameError) as e:
        await prov.create("Bad_Name")
    assert e.value.code == "invalid_name" and "Bad_Name" in str(e.value)
    with pytest.raises(urumi.InvalidSpecError) as s:
        await prov.create(unique("py-spec"), plan="gigantic")
    assert s.value.code == "invalid_spec"
    with pytest.raises(urumi.InvalidSpecError):
        await prov.list(status="Sleeping")
    with pytest.raises(urumi.InvalidSpecError):
        await prov.wait("whatever", status="Sleeping")
    with pytest.raises(urumi.InvalidSpecError):
        prov.with_caller("Not A Tenant")


async def test_not_found_exists_conflict_mismatch_timeout(
    prov: urumi.Provisioner, cleanup: list[str]
) -> None:
    with pytest.raises(urumi.NotFoundError) as nf:
        await prov.get(unique("py-none"))
    assert nf.value.code == "not_found" and nf.value.store is None
    with pytest.raises(urumi.NotFoundError):
        await prov.delete(unique("py-none"))

    name = unique("py-err")
    cleanup.append(name)
    await prov.create(name, idempotency_key=f"k-{name}")
    with pytest.raises(urumi.StoreExistsError) as ex:
        await prov.create(name)
    assert ex.value.code == "store_exists"
    with pytest.raises(urumi.IdempotencyMismatchError) as mm:
        await prov.create(unique("py-other"), idempotency_key=f"k-{name}")
    assert mm.value.code == "idempotency_mismatch"
    with pytest.raises(urumi.ConflictError) as c:
        await prov.retry(name)  # not Failed
    assert c.value.code == "conflict"
    with pytest.raises(urumi.TimeoutError) as t:
        await prov.wait(name, status="Deleting", timeout=0.5)
    assert t.value.code == "timeout" and isinstance(t.value, builtins.TimeoutError)
    with pytest.raises(ValueError):
        await prov.wait(name, timeout=-1)


async def test_forbidden_and_unauthorized(prov: urumi.Provisioner) -> None:
    acme = prov.with_caller("acme")
    with pytest.raises(urumi.ForbiddenError) as f:
        await acme.create(unique("py-forb"), tenant="globex")
    assert f.value.code == "forbidden"
    with pytest.raises(urumi.NotFoundError):
        await prov.receive_webhook(unique("py-hook"), "order.created", b"{}", "bad")


async def test_unauthorized_webhook(prov: urumi.Provisioner, cleanup: list[str]) -> None:
    name = unique("py-hook")
    cleanup.append(name)
    await prov.create(name)
    await prov.wait(name, "Ready", READY_TIMEOUT)
    with pytest.raises(urumi.UnauthorizedError) as u:
        await prov.receive_webhook(name, "order.created", b'{"id":1}', "not-a-signature")
    assert u.value.code == "unauthorized"


async def test_quota_and_rate_limits(state_dir: str) -> None:
    async with await urumi.Provisioner.open(
        f"sqlite://{state_dir}/quota.db", settings=FAST, limits={"storesPerTenant": 0}
    ) as p:
        with pytest.raises(urumi.QuotaExceededError) as q:
            await p.create(unique("py-quota"))
        assert q.value.code == "quota_exceeded" and q.value.retry_after is None
    async with await urumi.Provisioner.open(
        f"sqlite://{state_dir}/rate.db", settings=FAST, limits={"creations_per_hour": 0}
    ) as p:
        with pytest.raises(urumi.RateLimitedError) as r:
            await p.create(unique("py-rate"))
        assert r.value.code == "rate_limited"
        assert r.value.retry_after is not None and r.value.retry_after >= 1
        assert len(await p.list()) == 0, "a refused create creates nothing"


async def test_cursor_expired(prov: urumi.Provisioner) -> None:
    stream = prov.changes(after=10**15)
    with pytest.raises(urumi.CursorExpiredError) as e:
        await stream.__anext__()
    assert e.value.code == "cursor_expired"
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


def test_invalid_config_names_the_problem(state_dir: str) -> None:
    with pytest.raises(urumi.InvalidConfigError) as e:
        urumi.Provisioner(f"sqlite://{state_dir}/cfg.db", settings={"baseDomian": "x"})
    assert e.value.code == "invalid_config" and "baseDomian" in str(e.value)
    with pytest.raises(urumi.InvalidConfigError):
        urumi.Provisioner(f"sqlite://{state_dir}/cfg.db", kubeconfig="/nonexistent/kubeconfig")
    with pytest.raises(TypeError):
        urumi.Provisioner(f"sqlite://{state_dir}/cfg.db", settings={"tls": object()})


def test_missing_helm_is_named_when_opening(state_dir: str, tmp_path: object) -> None:
    path = os.environ["PATH"]
    os.environ["PATH"] = str(tmp_path)
    try:
        with pytest.raises(urumi.InvalidConfigError) as e:
            urumi.SyncProvisioner(f"sqlite://{state_dir}/nohelm.db")
    finally:
        os.environ["PATH"] = path
    assert "helm" in str(e.value)


def test_unsupported_and_unavailable_state() -> None:
    with pytest.raises(urumi.UnsupportedError) as u:
        urumi.SyncProvisioner("ftp://example.invalid/state")
    assert u.value.code == "unsupported"
    secret = "s3cr3t-pw"
    with pytest.raises(urumi.UrumiError) as e:
        urumi.SyncProvisioner(f"postgres://urumi:{secret}@127.0.0.1:9/urumi")
    assert e.value.code in ("unavailable", "internal")
    assert secret not in str(e.value) and secret not in repr(e.value)


async def test_store_failed_carries_the_store(state_dir: str) -> None:
    """A storage class that does not exist: volumes never bind, readiness gives up."""
    settings = {
        **FAST,
        "storageClass": "urumi-py-no-such-class",
        "orchestrator": {**FAST["orchestrator"], "readinessTimeout": 5, "retry": {"maxAttempts": 1}},
    }
    async with await urumi.Provisioner.open(
        f"sqlite://{state_dir}/failed.db", settings=settings, limits=UNLIMITED
    ) as p:
        name = unique("py-fail")
        await p.create(name)
        try:
            with pytest.raises(urumi.StoreFailedError) as e:
                await p.wait(name, "Ready", READY_TIMEOUT)
            assert e.value.code == "store_failed"
            assert e.value.store is not None and e.value.store.name == name
            assert e.value.store.status == "Failed" and e.value.store.message
        finally:
            await p.delete(name)
            await p.wait_deleted(name, 240)
