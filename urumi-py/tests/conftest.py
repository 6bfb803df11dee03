"""Shared fixtures: the local cluster and PostgreSQL, provisioners with fast settings,
unique store names (the cluster is shared with other suites running at the same time).

Needs ``KUBECONFIG`` and ``PATH`` from ``eval "$(tests/cluster/up)"`` and
``URUMI_TEST_POSTGRES_URL`` from ``eval "$(tests/postgres/up)"``.
"""

from __future__ import annotations

import asyncio
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import urumi

NEEDS = {
    "KUBECONFIG": 'run `eval "$(tests/cluster/up)"` from the repository root',
    "URUMI_TEST_POSTGRES_URL": 'run `eval "$(tests/postgres/up)"` from the repository root',
}
for var, how in NEEDS.items():
    if not os.environ.get(var):
        pytest.exit(f"{var} is not set: {how}, then run the tests again", returncode=2)
if shutil.which("helm") is None:
    pytest.exit('helm is not on PATH: run `eval "$(tests/cluster/up)"` first', returncode=2)

READY_TIMEOUT = 180.0
GONE_TIMEOUT = 240.0

UNLIMITED = {"storesPerTenant": 2**32 - 1, "creationsPerHour": 2**32 - 1, "storesTotal": 2**32 - 1}

FAST: dict[str, Any] = {
    "namespaceDeletionTimeoutSecs": 150,
    "orchestrator": {
        "concurrency": 4,
        "leaseTtl": 3,
        "pollInterval": 0.2,
        "readinessTimeout": 90,
        "resyncInterval": 0,
        "retry": {"maxAttempts": 8, "base": 300, "cap": 5000},
    },
}


def unique(prefix: str) -> str:
    """A store name no other test (or suite) uses."""
    return f"{prefix}-{secrets.token_hex(3)}"


def psql() -> str:
    found = shutil.which("psql") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))), None)
    if found is None:
        pytest.exit("psql not found: tests/postgres/up installs Debian's postgresql", returncode=2)
    return found


def postgres_schema_url() -> str:
    """A fresh schema on the test PostgreSQL, as a state URL."""
    url = os.environ["URUMI_TEST_POSTGRES_URL"]
    schema = f"py_{secrets.token_hex(6)}"
    subprocess.run(
        [psql(), url, "-q", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE SCHEMA {schema}"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options[search_path]={schema}"


@pytest.fixture(scope="session")
def state_dir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="urumi-py-") as d:
        yield d


@pytest.fixture(scope="session")
def prov(state_dir: str) -> Iterator[urumi.Provisioner]:
    """One provisioner on SQLite for the session (it is not tied to an event loop)."""
    p = urumi.Provisioner(
        state=f"sqlite://{state_dir}/urumi.db", settings=FAST, limits=UNLIMITED, actor="pytest"
    )
    yield p

    async def close() -> None:
        await p.close()

    asyncio.run(close())


@pytest.fixture
async def cleanup(prov: urumi.Provisioner) -> AsyncIterator[list[str]]:
    """Names appended here are deleted (and waited for) after the test."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            await prov.delete(name)
        except urumi.NotFoundError:
            continue
    for name in names:
        await prov.wait_deleted(name, timeout=GONE_TIMEOUT)
