"""Memory: 1,000 `get` calls and 1,000 change events leave RSS flat; and the per-call
overhead of `get` (printed, not asserted)."""

from __future__ import annotations

import gc
import os
import time

import urumi
from conftest import FAST, GONE_TIMEOUT, READY_TIMEOUT, UNLIMITED, unique

PAGE = os.sysconf("SC_PAGE_SIZE")
# Allocator noise: what 1,000 leaked Store objects (~1 KiB each) would already exceed.
FLAT = 4 * 1024 * 1024


def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


async def test_gets_and_change_events_leave_rss_flat(state_dir: str) -> None:
    async with await urumi.Provisioner.open(
        f"sqlite://{state_dir}/memory.db", settings=FAST, limits=UNLIMITED
    ) as p:
        names = [unique("py-mem") for _ in range(2)]
        for name in names:
            await p.create(name)
        for name in names:
            await p.wait(name, "Ready", READY_TIMEOUT)
        for name in names:
            await p.delete(name)
        for name in names:
            await p.wait_deleted(name, GONE_TIMEOUT)

        # Every change so far, replayed: count them once, then replay them until 1,000.
        total = 0
        async for change in p.changes(after=0):
            total += 1
            if change.kind == "deleted" and change.store.name == names[-1]:
                break
        assert total >= 10

        async def replay_events(n: int) -> int:
            seen = 0
            while seen < n:
                stream = p.changes(after=0)
                for _ in range(total):
                    change = await stream.__anext__()
                    assert change.seq > 0
                    seen += 1
                await stream.aclose()
            return seen

        keep = unique("py-memk")
        await p.create(keep)
        try:

            async def gets(n: int) -> None:
                for _ in range(n):
                    assert (await p.get(keep)).name == keep

            await gets(200)
            await replay_events(200)
            before = rss()
            await gets(1000)
            after_gets = rss()
            events = await replay_events(1000)
            after_events = rss()
        finally:
            await p.delete(keep)
            await p.wait_deleted(keep, GONE_TIMEOUT)
    print(
        f"\nRSS: {before >> 10} KiB -> {after_gets >> 10} KiB after 1000 get, "
        f"-> {after_events >> 10} KiB after {events} change events"
    )
    assert after_gets - before < FLAT, "1,000 get calls grew RSS"
    assert after_events - after_gets < FLAT, "1,000 change events grew RSS"


async def test_get_overhead_benchmark(state_dir: str) -> None:
    n = 2000
    async with await urumi.Provisioner.open("memory:", settings=FAST, limits=UNLIMITED) as p:
        name = unique("py-bench")
        await p.create(name)
        try:
            for _ in range(200):
                await p.get(name)
            t0 = time.perf_counter()
            for _ in range(n):
                await p.get(name)
            async_us = (time.perf_counter() - t0) / n * 1e6
        finally:
            await p.delete(name)
            await p.wait_deleted(name, GONE_TIMEOUT)
    with urumi.SyncProvisioner("memory:", settings=FAST, limits=UNLIMITED) as s:
        name = unique("py-bench")
        s.create(name)
        try:
            for _ in range(200):
                s.get(name)
            t0 = time.perf_counter()
            for _ in range(n):
                s.get(name)
            sync_us = (time.perf_counter() - t0) / n * 1e6
        finally:
            s.delete(name)
            s.wait_deleted(name, GONE_TIMEOUT)
    print(f"\nget on memory: state: await Provisioner.get {async_us:.1f} us/call, "
          f"SyncProvisioner.get {sync_us:.1f} us/call")
    assert async_us > 0 and sync_us > 0
