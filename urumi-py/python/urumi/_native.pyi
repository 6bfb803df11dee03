"""Type stubs of ``urumi._native``, the Rust extension (pyo3) that ``urumi`` re-exports.

Kept true by tests: ``mypy --strict`` on the examples and tests, and
``python -m mypy.stubtest urumi._native``.
"""

import builtins
import datetime
import os
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Optional, Union, final

from typing_extensions import Self

__version__: str
__all__ = [
    "AuditEvent",
    "Change",
    "ChangeStream",
    "ConflictError",
    "Credentials",
    "CursorExpiredError",
    "ERROR_CLASSES",
    "ERROR_CODES",
    "EventPage",
    "ForbiddenError",
    "IdempotencyInProgressError",
    "IdempotencyMismatchError",
    "InternalError",
    "InvalidConfigError",
    "InvalidNameError",
    "InvalidSpecError",
    "ManagedExternallyError",
    "NotFoundError",
    "PlanTooSmallError",
    "PreconditionFailedError",
    "Provisioner",
    "QuotaExceededError",
    "RateLimitedError",
    "Store",
    "StoreExistsError",
    "StoreFailedError",
    "StorePage",
    "SyncChangeStream",
    "SyncProvisioner",
    "TimeoutError",
    "UnauthorizedError",
    "UnavailableError",
    "UnsupportedError",
    "Urls",
    "UrumiError",
    "__version__",
]

ERROR_CODES: tuple[str, ...]
"""Every error code the core has (``ErrorKind::ALL``), in declaration order."""

ERROR_CLASSES: dict[str, type[UrumiError]]
"""The exception class of each code in ``ERROR_CODES``."""

_PathLike = Union[str, "os.PathLike[str]"]

class UrumiError(Exception):
    """Base of every Urumi error. ``code`` is the stable machine string of the HTTP API."""

    code: str
    """The error code (``not_found``, ``store_exists``, ...)."""
    store: Optional[Store]
    """The store, for ``StoreFailedError``; otherwise ``None``."""
    retry_after: Optional[float]
    """Seconds to wait before retrying, for ``RateLimitedError``; otherwise ``None``."""

class InvalidNameError(UrumiError):
    """A store name broke a naming rule (a DNS label of 3-40 characters, not reserved)."""

class InvalidSpecError(UrumiError):
    """An argument other than the name is invalid (plan, engine, tenant, status, limit, cursor)."""

class StoreExistsError(UrumiError):
    """A store with this name already exists (names are unique across tenants)."""

class NotFoundError(UrumiError):
    """No such store, or not one the caller may see."""

class QuotaExceededError(UrumiError):
    """A store cap (per tenant or for the platform) was reached."""

class RateLimitedError(UrumiError):
    """Too many creations in the rate window; ``retry_after`` says how many seconds to wait."""

class ConflictError(UrumiError):
    """The call conflicts with the store's current state."""

class IdempotencyMismatchError(UrumiError):
    """The idempotency key was already used with a different request."""

class IdempotencyInProgressError(UrumiError):
    """A request with the same idempotency key is still being processed; retry shortly."""

class UnauthorizedError(UrumiError):
    """Not authenticated (e.g. a webhook delivery without a valid signature)."""

class ForbiddenError(UrumiError):
    """The caller may not do this (e.g. a tenant naming another tenant)."""

class TimeoutError(UrumiError, builtins.TimeoutError):
    """An operation (e.g. ``wait``) did not finish in time. Also a builtin ``TimeoutError``."""

class InvalidConfigError(UrumiError):
    """The provisioner's configuration is invalid (settings, kubeconfig, helm missing)."""

class UnavailableError(UrumiError):
    """A service Urumi depends on is unavailable, or the provisioner is closed."""

class UnsupportedError(UrumiError):
    """Not supported by this configuration (e.g. an unknown state URL scheme)."""

class InternalError(UrumiError):
    """A permanent failure that needs a human; details are in the logs."""

class StoreFailedError(UrumiError):
    """The store waited for reached ``Failed``; ``store`` is the store."""

class CursorExpiredError(UrumiError):
    """A change-feed cursor is older than the retention: list again, then follow."""

class ManagedExternallyError(UrumiError):
    """A Store object in Kubernetes manages this store: change or delete that object."""

class PlanTooSmallError(UrumiError):
    """The store uses more than the plan asked for allows (the message has the numbers);
    nothing changed."""

class PreconditionFailedError(UrumiError):
    """The store is not at the version given as ``if_version`` (someone changed it); read
    it again."""

@final
class Urls:
    """Where a store answers; each URL is ``None`` until known."""

    @property
    def storefront(self) -> Optional[str]:
        """The shop's public URL."""
    @property
    def admin(self) -> Optional[str]:
        """The WordPress admin URL."""

@final
class Store:
    """A store: what it is, where it stands and where it answers. Holds no secret."""

    @property
    def name(self) -> str:
        """The store's unique name (a DNS label)."""
    @property
    def tenant(self) -> str:
        """The owning tenant."""
    @property
    def engine(self) -> str:
        """What it runs (``woocommerce``)."""
    @property
    def plan(self) -> str:
        """Its plan (``small``, ``medium``, ``large``)."""
    @property
    def status(self) -> str:
        """``Pending``, ``Provisioning``, ``Ready``, ``Updating``, ``Degraded``, ``Failed`` or
        ``Deleting``."""
    @property
    def step(self) -> str:
        """The step in progress, or the one that failed."""
    @property
    def message(self) -> str:
        """The last progress note or failure reason, for the store's owner."""
    @property
    def namespace(self) -> str:
        """Its Kubernetes namespace."""
    @property
    def urls(self) -> Urls:
        """Where it answers."""
    @property
    def created_at(self) -> datetime.datetime:
        """When it was accepted (UTC)."""
    @property
    def updated_at(self) -> datetime.datetime:
        """When the record last changed (UTC)."""
    @property
    def ready_at(self) -> Optional[datetime.datetime]:
        """When it first became Ready (UTC), if it has."""
    @property
    def provisioning_seconds(self) -> Optional[float]:
        """Seconds from acceptance to Ready, once Ready."""
    @property
    def attempts(self) -> int:
        """Provisioning attempts made (1 on the first run)."""
    @property
    def version(self) -> int:
        """Increases with every change of the record."""
    @property
    def managed_by(self) -> Optional[str]:
        """The Kubernetes object managing the store (``Store <namespace>/<name>``), or ``None``."""
    @property
    def suspended(self) -> bool:
        """Suspended: no pod runs and no Ingress exists; volumes and credentials are kept."""
    @property
    def chart(self) -> Optional[dict[str, Any]]:
        """The chart it runs, ``{"version", "appVersion", "outdated"}``, or ``None`` before
        its release step."""
    def to_dict(self) -> dict[str, Any]:
        """The HTTP API's Store JSON as a dict (camelCase keys)."""

@final
class Credentials:
    """A store's admin login; ``repr()`` hides the password."""

    @property
    def admin_url(self) -> Optional[str]:
        """The WordPress admin URL, if known."""
    @property
    def username(self) -> str:
        """The admin user name."""
    @property
    def password(self) -> str:
        """The admin password. Never log it."""
    def to_dict(self) -> dict[str, Any]:
        """``{"adminUrl", "username", "password"}`` as the HTTP API answers."""

@final
class Change:
    """One entry of the change feed; ``seq`` is the cursor to resume after."""

    @property
    def seq(self) -> int:
        """The feed's sequence number (strictly increasing; the resume cursor)."""
    @property
    def at(self) -> datetime.datetime:
        """When the change was written (UTC)."""
    @property
    def kind(self) -> str:
        """``created``, ``updated`` or ``deleted``."""
    @property
    def store(self) -> Store:
        """The store after the change (for ``deleted``, its last record)."""
    def to_dict(self) -> dict[str, Any]:
        """``{"seq", "at", "kind", "store"}`` as the feed serializes it."""

@final
class AuditEvent:
    """One audited action. Never contains a password or an API key."""

    @property
    def id(self) -> str:
        """A time-ordered unique id (UUID v7)."""
    @property
    def at(self) -> datetime.datetime:
        """When it happened (UTC)."""
    @property
    def actor(self) -> str:
        """Who did it (the caller's actor, ``system`` for the worker)."""
    @property
    def tenant(self) -> Optional[str]:
        """The tenant concerned, if any."""
    @property
    def action(self) -> str:
        """What was done: ``store.create``, ``provision.release``, ..."""
    @property
    def store(self) -> Optional[str]:
        """The store concerned, if any."""
    @property
    def outcome(self) -> str:
        """``success``, ``failure`` or ``denied``."""
    @property
    def detail(self) -> str:
        """A short human explanation; may be empty."""
    @property
    def source_ip(self) -> Optional[str]:
        """The client's address, when the action came over the network."""
    def to_dict(self) -> dict[str, Any]:
        """The HTTP API's AuditEvent JSON (camelCase keys)."""

@final
class StorePage:
    """One page of ``list()``; iterating it iterates ``items``."""

    @property
    def items(self) -> list[Store]:
        """The stores of this page, newest first."""
    @property
    def next_cursor(self) -> Optional[str]:
        """Pass as ``cursor=`` for the next page; ``None`` on the last page."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Store]: ...

@final
class EventPage:
    """One page of ``events()`` / ``audit()``; iterating it iterates ``items``."""

    @property
    def items(self) -> list[AuditEvent]:
        """The events of this page, newest first."""
    @property
    def next_cursor(self) -> Optional[str]:
        """Pass as ``cursor=`` for the next page; ``None`` on the last page."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[AuditEvent]: ...

@final
class ChangeStream:
    """The change feed for ``async for``; ends when the provisioner closes."""

    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> Change: ...
    async def aclose(self) -> None:
        """Stops following the feed."""

@final
class SyncChangeStream:
    """The change feed for ``for`` (blocking; Ctrl-C interrupts it)."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> Change: ...
    def close(self) -> None:
        """Stops following the feed."""

@final
class Provisioner:
    """Provisions isolated WooCommerce stores on Kubernetes (asyncio API).

    The constructor opens the state store, the cluster client and helm and starts the
    background worker (blocking a moment); ``await Provisioner.open(...)`` does the same
    without blocking the event loop. Calls are made as an admin of tenant ``default``
    named ``python`` unless ``tenant``/``actor``/``role`` say otherwise.
    """

    def __new__(
        cls,
        state: str,
        *,
        kubeconfig: Optional[_PathLike] = None,
        base_domain: Optional[str] = None,
        plans: Optional[dict[str, Any]] = None,
        limits: Optional[dict[str, Any]] = None,
        settings: Optional[dict[str, Any]] = None,
        tenant: str = "default",
        actor: str = "python",
        role: str = "admin",
    ) -> Self: ...
    @classmethod
    async def open(
        cls,
        state: str,
        *,
        kubeconfig: Optional[_PathLike] = None,
        base_domain: Optional[str] = None,
        plans: Optional[dict[str, Any]] = None,
        limits: Optional[dict[str, Any]] = None,
        settings: Optional[dict[str, Any]] = None,
        tenant: str = "default",
        actor: str = "python",
        role: str = "admin",
    ) -> Provisioner:
        """Opens a provisioner without blocking the event loop."""
    def with_caller(self, tenant: str, *, actor: Optional[str] = None, role: str = "tenant") -> Provisioner:
        """A handle on the same provisioner whose calls are made as ``tenant``'s caller."""
    async def create(
        self,
        name: str,
        plan: Optional[str] = None,
        engine: Optional[str] = None,
        *,
        tenant: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> Store:
        """Accepts a new store (``Pending``) and provisions it in the background."""
    async def get(self, name: str) -> Store:
        """One store."""
    async def list(
        self,
        *,
        status: Optional[str] = None,
        tenant: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> StorePage:
        """One page of the stores the caller may see, newest first."""
    async def delete(
        self, name: str, *, idempotency_key: Optional[str] = None, if_version: Optional[int] = None
    ) -> Store:
        """Starts deleting a store (status ``Deleting``)."""
    async def retry(
        self, name: str, *, idempotency_key: Optional[str] = None, if_version: Optional[int] = None
    ) -> Store:
        """Provisions a ``Failed`` store again from the step that failed."""
    async def upgrade(
        self, name: str, *, idempotency_key: Optional[str] = None, if_version: Optional[int] = None
    ) -> Store:
        """Moves an outdated store to the bundled chart (``Updating``, then ``Ready`` on it; a
        failed upgrade is rolled back and the store is Ready on its previous chart). Not
        outdated: unchanged."""
    async def suspend(
        self, name: str, *, idempotency_key: Optional[str] = None, if_version: Optional[int] = None
    ) -> Store:
        """Stops a Ready store (``Updating``, then ``Ready`` with ``suspended`` true): no pod
        runs, no Ingress; volumes and credentials kept. Already suspended: unchanged."""
    async def resume(
        self, name: str, *, idempotency_key: Optional[str] = None, if_version: Optional[int] = None
    ) -> Store:
        """Starts a suspended store again on the same volumes and credentials (``Updating``,
        then ``Ready`` with ``suspended`` false). Not suspended: unchanged."""
    async def update(
        self,
        name: str,
        *,
        plan: str,
        idempotency_key: Optional[str] = None,
        if_version: Optional[int] = None,
    ) -> Store:
        """Changes a Ready store's plan (status ``Updating``, then ``Ready``); refused with
        ``PlanTooSmallError`` when the store holds more than the new plan allows."""
    async def credentials(self, name: str) -> Credentials:
        """The store's admin login (audited)."""
    async def usage(self, name: str) -> dict[str, Any]:
        """What the store uses of its plan (quota ``used``/``hard`` per resource, its
        volumes), read from the cluster now; as the HTTP API's JSON."""
    async def revisions(self, name: str) -> builtins.list[dict[str, Any]]:
        """The revisions of the store's release, oldest first (helm's history); as the
        HTTP API's JSON items."""
    def plans(self) -> builtins.list[dict[str, Any]]:
        """Every plan and what it grants, smallest first (not awaited)."""
    async def verify(self, name: str) -> dict[str, Any]:
        """Proves a Ready store sells; the report as the HTTP API's JSON."""
    async def events(
        self, name: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> EventPage:
        """One page of the store's audit trail, newest first."""
    async def audit(
        self,
        *,
        action: Optional[str] = None,
        tenant: Optional[str] = None,
        store: Optional[str] = None,
        since: Optional[datetime.datetime] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> EventPage:
        """One page of every audit event the caller may see, newest first."""
    async def wait(self, name: str, status: str = "Ready", timeout: float = 300.0) -> Store:
        """Waits until the store has ``status`` (at most ``timeout`` seconds)."""
    async def wait_deleted(self, name: str, timeout: float = 300.0) -> None:
        """Waits until the store is gone (at most ``timeout`` seconds)."""
    async def check_ready(self) -> None:
        """Checks that the state store and the Kubernetes API answer."""
    async def receive_webhook(self, name: str, topic: str, body: bytes, signature: str) -> None:
        """Accepts a WooCommerce webhook delivery for store ``name``."""
    def changes(self, after: Optional[int] = None) -> ChangeStream:
        """The durable change feed: every change after ``after``, then each new one."""
    async def close(self) -> None:
        """Stops the background worker and releases the provisioner. Idempotent."""
    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called on this object."""
    @property
    def tenant(self) -> str:
        """The caller's tenant."""
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...

@final
class SyncProvisioner:
    """Provisions isolated WooCommerce stores on Kubernetes (blocking API, for scripts)."""

    def __new__(
        cls,
        state: str,
        *,
        kubeconfig: Optional[_PathLike] = None,
        base_domain: Optional[str] = None,
        plans: Optional[dict[str, Any]] = None,
        limits: Optional[dict[str, Any]] = None,
        settings: Optional[dict[str, Any]] = None,
        tenant: str = "default",
        actor: str = "python",
        role: str = "admin",
    ) -> Self: ...
    def with_caller(self, tenant: str, *, actor: Optional[str] = None, role: str = "tenant") -> SyncProvisioner:
        """A handle on the same provisioner whose calls are made as ``tenant``'s caller."""
    def create(
        self,
        name: str,
        plan: Optional[str] = None,
        engine: Optional[str] = None,
        *,
        tenant: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> Store:
        """Accepts a new store (``Pending``) and provisions it in the background."""
    def get(self, name: str) -> Store:
        """One store."""
    def list(
        self,
        *,
        status: Optional[str] = None,
        tenant: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> StorePage:
        """One page of the stores the caller may see, newest first."""
    def delete(
        self, name: str, *, idempotency_key: Optional[str] = None, if_version: Optional[int] = None
    ) -> Store:
        """Starts deleting a store (status ``Deleting``)."""
    def retry(
        self, name: str, *, idempotency_key: Optional[str] = None, if_version: Optional[int] = None
    ) -> Store:
        """Provisions a ``Failed`` store again from the step that failed."""
    def upgrade(
        self, name: str, *, idempotency_key: Optional[str] = None, if_version: Optional[int] = None
    ) -> Store:
        """Moves an outdated store to the bundled chart (``Updating``, then ``Ready`` on it; a
        failed upgrade is rolled back and the store is Ready on its previous chart). Not
        outdated: unchanged."""
    def suspend(
        self, name: str, *, idempotency_key: Optional[str] = None, if_version: Optional[int] = None
    ) -> Store:
        """Stops a Ready store (``Updating``, then ``Ready`` with ``suspended`` true): no pod
        runs, no Ingress; volumes and credentials kept. Already suspended: unchanged."""
    def resume(
        self, name: str, *, idempotency_key: Optional[str] = None, if_version: Optional[int] = None
    ) -> Store:
        """Starts a suspended store again on the same volumes and credentials (``Updating``,
        then ``Ready`` with ``suspended`` false). Not suspended: unchanged."""
    def update(
        self,
        name: str,
        *,
        plan: str,
        idempotency_key: Optional[str] = None,
        if_version: Optional[int] = None,
    ) -> Store:
        """Changes a Ready store's plan (status ``Updating``, then ``Ready``); refused with
        ``PlanTooSmallError`` when the store holds more than the new plan allows."""
    def credentials(self, name: str) -> Credentials:
        """The store's admin login (audited)."""
    def usage(self, name: str) -> dict[str, Any]:
        """What the store uses of its plan (quota ``used``/``hard`` per resource, its
        volumes), read from the cluster now; as the HTTP API's JSON."""
    def revisions(self, name: str) -> builtins.list[dict[str, Any]]:
        """The revisions of the store's release, oldest first (helm's history); as the
        HTTP API's JSON items."""
    def plans(self) -> builtins.list[dict[str, Any]]:
        """Every plan and what it grants, smallest first."""
    def verify(self, name: str) -> dict[str, Any]:
        """Proves a Ready store sells; the report as the HTTP API's JSON."""
    def events(
        self, name: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> EventPage:
        """One page of the store's audit trail, newest first."""
    def audit(
        self,
        *,
        action: Optional[str] = None,
        tenant: Optional[str] = None,
        store: Optional[str] = None,
        since: Optional[datetime.datetime] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> EventPage:
        """One page of every audit event the caller may see, newest first."""
    def wait(self, name: str, status: str = "Ready", timeout: float = 300.0) -> Store:
        """Waits until the store has ``status`` (at most ``timeout`` seconds)."""
    def wait_deleted(self, name: str, timeout: float = 300.0) -> None:
        """Waits until the store is gone (at most ``timeout`` seconds)."""
    def check_ready(self) -> None:
        """Checks that the state store and the Kubernetes API answer."""
    def receive_webhook(self, name: str, topic: str, body: bytes, signature: str) -> None:
        """Accepts a WooCommerce webhook delivery for store ``name``."""
    def changes(self, after: Optional[int] = None) -> SyncChangeStream:
        """The durable change feed: every change after ``after``, then each new one."""
    def close(self) -> None:
        """Stops the background worker and releases the provisioner. Idempotent."""
    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called on this object."""
    @property
    def tenant(self) -> str:
        """The caller's tenant."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...
