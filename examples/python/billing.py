"""A billing platform embeds Urumi: a new customer signs up, their store is provisioned.

    customer signs up (order id) -> create(store, idempotency_key=order id)   # safe to retry
                                 -> wait until Ready -> email URL and admin login
                                 -> (here, at once) tear it down

Run against the local cluster from the repository root:

    eval "$(tests/cluster/up)"
    python examples/python/billing.py [--state sqlite:///tmp/billing.db] [--show-password]

The admin password is printed only with --show-password (a real platform would send it
to the customer, never to a log).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile

import urumi


async def sign_up(p: urumi.Provisioner, customer: str, order_id: str, show_password: bool) -> None:
    store_name = f"{customer}-{secrets.token_hex(3)}"
    # The order id is the idempotency key: if the payment webhook is delivered twice, or
    # this process crashes and the job is retried, the customer still gets one store.
    store = await p.create(store_name, plan="small", idempotency_key=order_id)
    print(f"order {order_id}: store {store.name} accepted ({store.status})")
    again = await p.create(store_name, plan="small", idempotency_key=order_id)
    assert again.name == store.name, "a retried order replays the first answer"

    try:
        store = await p.wait(store.name, status="Ready", timeout=300)
    except urumi.StoreFailedError as e:
        failed = e.store
        print(f"store {store_name} failed: {failed.message if failed else e}", file=sys.stderr)
        raise
    print(f"store {store.name} is Ready in {store.provisioning_seconds:.1f}s")
    print(f"  storefront: {store.urls.storefront}")
    login = await p.credentials(store.name)  # audited as store.credentials.read
    print(f"  admin:      {login.admin_url or store.urls.admin}")
    print(f"  username:   {login.username}")
    print(f"  password:   {login.password if show_password else '(hidden; pass --show-password)'}")

    # The customer cancels (here: the example cleans up after itself).
    await p.delete(store.name, idempotency_key=f"cancel-{order_id}")
    await p.wait_deleted(store.name, timeout=300)
    print(f"store {store.name} deleted")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--state", help="state URL (default: a new SQLite file)")
    parser.add_argument("--customer", default="acme")
    parser.add_argument("--show-password", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = args.state or os.environ.get("URUMI_STATE") or f"sqlite://{tmp}/billing.db"
        try:
            p = await urumi.Provisioner.open(state, actor="billing")
        except urumi.InvalidConfigError as e:  # no kubeconfig, no helm on PATH, ...
            print(f"cannot start Urumi: {e}", file=sys.stderr)
            return 2
        async with p:
            order_id = f"order-{secrets.token_hex(4)}"
            await sign_up(p, args.customer, order_id, args.show_password)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
