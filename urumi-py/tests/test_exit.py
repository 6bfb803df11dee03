"""A program that awaits the provisioner and exits must exit cleanly: 0, no abort.

Each awaitable hands its result to asyncio from another thread; with the hand-over of
pyo3-async-runtimes that thread could still be inside it when the interpreter finalized,
and the process aborted ("PyGILState_Release: thread state ... must be current when
releasing") or crashed with SIGSEGV: 22 of 80 runs of this program on a busy 2-core
machine. urumi's bridge counts each hand-over to its end and an atexit hook waits for them.
"""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import asyncio, sys, urumi

async def main():
    p = await urumi.Provisioner.open("sqlite://" + sys.argv[1] + "/exit.db", actor="exit")
    try:
        for i in range(20):
            try:
                await p.get("nope%d" % i)
            except urumi.NotFoundError:
                pass
            await p.list()
    finally:
        await p.close()

asyncio.run(main())
print("done")
"""

RUNS = 25


def test_a_program_that_awaited_the_provisioner_exits_cleanly(state_dir: str) -> None:
    failures = []
    for run in range(RUNS):
        done = subprocess.run(
            [sys.executable, "-c", PROGRAM, state_dir],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0 or done.stdout.strip() != "done":
            failures.append(f"run {run}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
    assert not failures, f"{len(failures)} of {RUNS} runs did not exit cleanly:\n" + "\n".join(
        failures
    )
