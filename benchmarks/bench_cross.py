"""Cross-server figures: two real Jupyter servers on one real PostgreSQL database, beside one
server on SQLite (figures, not a timed test).

    .venv/bin/python benchmarks/bench_cross.py [--latency] [--load] [--rounds 3]
                                               [--chunks 20000] [--delay 0.001]
                                               [--runs 50] [--readers 3]

Latency: a run of CHUNKS text chunks (`count CHUNKS delay DELAY`, paced like a model) started
on server A, followed by a socket on A and by one on server B (resumed from the start as soon
as the run has started). For every event, the delay between its arrival on A's socket (A
appends it and sends it in the same turn of its loop) and its arrival on B's: append on A ->
delivery on B, through A's store writer (a commit every 20 ms), NOTIFY, B's read by id and B's
socket. p50, p99 and max over the events after the first 100 (B's catch-up). Beside it, the
same measure for a second socket on A itself, on PostgreSQL and on SQLite (one server: what
a reader of the same server sees). Rounds alternate the stores.

Load: RUNS runs at once, started alternately on A and B, each followed by READERS sockets (the
starter, then alternately one on the other server and one on the same); every reader must
receive exactly the run's log (GET runs/{id}) and every run must complete, else the script
exits non-zero. Beside it the same load on one server with SQLite (bench_load.py's case).
Both print wall time, deliveries/s and the servers' CPU time.

PostgreSQL: a throwaway server from tests/pgserver.py (Debian's postgresql, `make postgres`),
with PostgreSQL's default settings (fsync on, unlike the tests' server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import urllib.error
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("AGNO_TELEMETRY", "false")

from bench_load import connect, cpu_seconds, read_timed
from jupyterproc import JupyterProcess
from pgserver import PostgresServer

TIMEOUT = 120.0
SKIP = 100  # events of B's catch-up, left out of the latency figures
Event = dict[str, Any]


def store_args(url: str) -> list[str]:
    return [f"--DeltakitApp.store_url={url}", "--DeltakitApp.max_subscriptions_per_minute=0"]


async def latency_once(owner: JupyterProcess, reader: JupyterProcess, message: str) -> list[float]:
    """Seconds from each event's arrival on the owner's socket to its arrival on `reader`'s."""
    starter = await connect(owner)
    other = await connect(reader)
    await starter.write_message(json.dumps({"message": message}))
    first = json.loads(await asyncio.wait_for(starter.read_message(), TIMEOUT))  # type: ignore[arg-type]
    t0 = time.perf_counter()
    first = first if isinstance(first, list) else [first]
    await until_stored(reader, first[0]["runId"])
    await other.write_message(json.dumps({"runId": first[0]["runId"], "lastEventId": -1}))
    (rest, on_owner), (seen, on_reader) = await asyncio.gather(
        read_timed(starter), read_timed(other)
    )
    on_owner.update({e["eventId"]: t0 for e in first})
    if first + rest != seen:
        raise RuntimeError("the reader did not get the owner's events")
    return [on_reader[i] - on_owner[i] for i in range(SKIP, len(seen))]


async def until_stored(server: JupyterProcess, run_id: str) -> None:
    """Wait until `server` knows the run (another server's store writer commits its row
    within a batch, 20 ms, of its start)."""
    for _ in range(100):
        try:
            await asyncio.to_thread(server.get, f"/deltakit/runs/{run_id}")
            return
        except urllib.error.HTTPError:
            await asyncio.sleep(0.01)
    raise RuntimeError(f"run {run_id} never reached the other server")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def latency(pg: PostgresServer, rounds: int, chunks: int, delay: float) -> None:
    message = f"count {chunks} delay {delay}"
    url = pg.create_database()
    figures: dict[str, list[list[float]]] = {"pg A->B": [], "pg A->A": [], "sqlite A->A": []}
    with (
        JupyterProcess(None, *store_args(url)) as a,
        JupyterProcess(None, *store_args(url)) as b,
        JupyterProcess(None) as lite,
    ):
        for server in (a, b, lite):  # warm up: imports, first agents
            asyncio.run(latency_once(server, server, "count 200"))
        for i in range(rounds):
            print(f"  round {i + 1}/{rounds}", flush=True)
            order = [("pg A->B", a, b), ("sqlite A->A", lite, lite), ("pg A->A", a, a)]
            for name, owner, reader in order if i % 2 == 0 else order[::-1]:
                figures[name].append(asyncio.run(latency_once(owner, reader, message)))
    print(f"latency: a run of {message!r}, per event, arrival on the owner's socket -> ")
    print(f"  arrival on the reader's; median over {rounds} rounds of each round's figure")
    print(f"  (events {SKIP}.. of each run; load average {os.getloadavg()[0]:.2f})")
    for name, runs in figures.items():
        p50 = statistics.median(pct(r, 0.5) for r in runs)
        p99 = statistics.median(pct(r, 0.99) for r in runs)
        top = statistics.median(max(r) * 1000 for r in runs)
        print(f"  {name:<12} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   max {top:6.1f} ms")


async def load_run(starter: JupyterProcess, readers: list[JupyterProcess], message: str) -> Any:
    ws = await connect(starter)
    others = [await connect(server) for server in readers]
    await ws.write_message(json.dumps({"message": message}))
    first = json.loads(await asyncio.wait_for(ws.read_message(), TIMEOUT))  # type: ignore[arg-type]
    first = first if isinstance(first, list) else [first]
    run_id = first[0]["runId"]
    for server in set(readers) - {starter}:
        await until_stored(server, run_id)
    for other in others:
        await other.write_message(json.dumps({"runId": run_id, "lastEventId": -1}))
    (rest, _), *seen = await asyncio.gather(read_timed(ws), *(read_timed(o) for o in others))
    return run_id, [first + rest, *(s for s, _ in seen)]


async def load_once(servers: list[JupyterProcess], runs: int, readers: int, message: str) -> Any:
    pids = [s.proc.pid for s in servers]  # type: ignore[union-attr]
    cpu0 = [cpu_seconds(p) for p in pids]
    t0 = time.perf_counter()
    jobs = []
    for i in range(runs):
        starter = servers[i % len(servers)]
        other = servers[(i + 1) % len(servers)]
        chosen = [other if k % 2 == 0 else starter for k in range(readers - 1)]
        jobs.append(load_run(starter, chosen, message))
    results = await asyncio.gather(*jobs)
    wall = time.perf_counter() - t0
    cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
    delivered = 0
    for i, (run_id, seen) in enumerate(results):
        server = servers[i % len(servers)]
        log = await asyncio.to_thread(server.get, f"/deltakit/runs/{run_id}")
        if log["status"] != "completed":
            raise RuntimeError(f"run {run_id}: {log['status']}")
        for events in seen:
            if events != log["events"]:
                raise RuntimeError(f"a reader of {run_id} got {len(events)}/{len(log['events'])}")
            delivered += len(events)
    return wall, cpu, delivered


def load(pg: PostgresServer, runs: int, readers: int, chunks: int, delay: float) -> None:
    message = f"count {chunks} delay {delay}"
    url = pg.create_database()
    with (
        JupyterProcess(None, *store_args(url)) as a,
        JupyterProcess(None, *store_args(url)) as b,
        JupyterProcess(None, "--DeltakitApp.max_subscriptions_per_minute=0") as lite,
    ):
        asyncio.run(load_once([a, b], 2, 2, "count 50"))  # warm up
        asyncio.run(load_once([lite], 2, 2, "count 50"))
        cases = [("PostgreSQL, 2 servers", [a, b]), ("SQLite, 1 server", [lite])]
        out = [
            (name, asyncio.run(load_once(servers, runs, readers, message)))
            for name, servers in cases
        ]
    print(f"load: {runs} concurrent runs x {readers} readers, message {message!r}")
    print(f"  (load average {os.getloadavg()[0]:.2f})")
    for name, (wall, cpu, delivered) in out:
        cpus = " + ".join(f"{c:.1f}" for c in cpu)
        print(
            f"  {name:<22} every delivery arrived: yes ({delivered:,});  wall {wall:6.2f} s;  "
            f"{delivered / wall:>8,.0f} deliveries/s;  server CPU {cpus} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--load", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=20000, help="chunks of the latency run")
    parser.add_argument("--delay", type=float, default=0.001, help="seconds between chunks")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--load-chunks", type=int, default=1000)
    parser.add_argument("--load-delay", type=float, default=0.002)
    args = parser.parse_args()
    both = not args.latency and not args.load
    # PostgreSQL's own defaults (fsync on), not the tests' fast settings: commits cost what
    # they cost on a real server.
    with PostgresServer(settings=()) as pg:
        if args.latency or both:
            latency(pg, args.rounds, args.chunks, args.delay)
        if args.load or both:
            load(pg, args.runs, args.readers, args.load_chunks, args.load_delay)


if __name__ == "__main__":
    main()
