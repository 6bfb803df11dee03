"""Provision isolated WooCommerce stores on Kubernetes, from Python.

``urumi`` wraps the Rust library ``urumi-core``: the same operations and error codes as
the Urumi HTTP API, with an asyncio API (:class:`Provisioner`) and a blocking twin for
scripts (:class:`SyncProvisioner`)::

    import urumi

    async with await urumi.Provisioner.open(state="sqlite://urumi.db") as p:
        await p.create("shop1", plan="small", idempotency_key="order-1001")
        store = await p.wait("shop1", status="Ready", timeout=300)
        print(store.urls.storefront)

Errors are :class:`UrumiError` subclasses with ``.code`` (``not_found``,
``store_exists``, ...); ``ERROR_CLASSES`` maps every code to its class.
"""

from ._native import (
    ERROR_CLASSES as ERROR_CLASSES,
    ERROR_CODES as ERROR_CODES,
    AuditEvent as AuditEvent,
    Change as Change,
    ChangeStream as ChangeStream,
    ConflictError as ConflictError,
    Credentials as Credentials,
    CursorExpiredError as CursorExpiredError,
    EventPage as EventPage,
    ForbiddenError as ForbiddenError,
    IdempotencyInProgressError as IdempotencyInProgressError,
    IdempotencyMismatchError as IdempotencyMismatchError,
    InternalError as InternalError,
    InvalidConfigError as InvalidConfigError,
    InvalidNameError as InvalidNameError,
    InvalidSpecError as InvalidSpecError,
    ManagedExternallyError as ManagedExternallyError,
    NotFoundError as NotFoundError,
    PlanTooSmallError as PlanTooSmallError,
    PreconditionFailedError as PreconditionFailedError,
    Provisioner as Provisioner,
    QuotaExceededError as QuotaExceededError,
    RateLimitedError as RateLimitedError,
    Store as Store,
    StoreExistsError as StoreExistsError,
    StoreFailedError as StoreFailedError,
    StorePage as StorePage,
    SyncChangeStream as SyncChangeStream,
    SyncProvisioner as SyncProvisioner,
    TimeoutError as TimeoutError,
    UnauthorizedError as UnauthorizedError,
    UnavailableError as UnavailableError,
    UnsupportedError as UnsupportedError,
    UrumiError as UrumiError,
    Urls as Urls,
    __version__ as __version__,
)

__all__ = [
    "ERROR_CLASSES",
    "ERROR_CODES",
    "AuditEvent",
    "Change",
    "ChangeStream",
    "ConflictError",
    "Credentials",
    "CursorExpiredError",
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
    "UrumiError",
    "Urls",
    "__version__",
]
