"""Load figures for deltakit_nb on a real Jupyter server process (figures, not a timed test).

    .venv/bin/python benchmarks/bench_load.py [--runs 50] [--readers 3] [--chunks 1000]
                                              [--delay 0.002]

Starts RUNS runs at once, each followed by READERS sockets (the one that started it plus
READERS-1 that resume it from the start while it streams). Every reader must receive exactly the
run's log (as GET runs/{id} returns it: every event, once, in order) and every run must complete;
the script exits non-zero otherwise. Prints wall time, events/s, the server's CPU time and its
peak RSS.

--delay 0 uses the offline model's `bench N` (as fast as agno goes); a positive delay uses
`count N delay S`, a model that paces its chunks like a real one.

    .venv/bin/python benchmarks/bench_load.py --soak 100000 [--persist both] [--threads 400]
                                              [--sockets 8] [--message "echo hi there"]

Soak: SOAK short runs, one after another on each of SOCKETS sockets, spread round-robin over
THREADS threads, against a fresh server (with persist on, off, or one after the other). Prints
the server's RSS every SOAK/10 runs: after warm-up it must stay flat, whatever the number of
runs. The limit of start frames per socket and minute is lifted for it.
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
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
os.environ.setdefault("AGNO_TELEMETRY", "false")

from jupyterproc import TOKEN, JupyterProcess
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

Event = dict[str, Any]
TIMEOUT = 120.0


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def connect(server: JupyterProcess) -> WebSocketClientConnection:
    request = HTTPRequest(server.ws_url, headers={"Authorization": f"token {TOKEN}"})
    return await websocket_connect(request, max_message_size=1 << 30)


async def read_timed(ws: WebSocketClientConnection) -> tuple[list[Event], dict[int, float]]:
    """Every event to the terminal one, and when each arrived (its frame's arrival)."""
    events: list[Event] = []
    arrived: dict[int, float] = {}
    while not events or events[-1]["type"] not in ("done", "error"):
        raw = await asyncio.wait_for(ws.read_message(), TIMEOUT)
        now = time.perf_counter()
        if raw is None:
            raise RuntimeError(f"socket closed after {len(events)} events")
        data = json.loads(raw)
        batch = data if isinstance(data, list) else [data]
        if any("eventId" not in e for e in batch):
            raise RuntimeError(f"error frame: {batch}")
        for event in batch:
            arrived[event["eventId"]] = now
        events.extend(batch)
    ws.close()
    return events, arrived


async def read_to_end(ws: WebSocketClientConnection) -> list[Event]:
    return (await read_timed(ws))[0]


async def one_run(server: JupyterProcess, message: str, readers: int) -> dict[str, Any]:
    starter = await connect(server)
    others = [await connect(server) for _ in range(readers - 1)]
    sent = time.perf_counter()
    await starter.write_message(json.dumps({"message": message}))
    first = json.loads(await asyncio.wait_for(starter.read_message(), TIMEOUT))  # type: ignore[arg-type]
    first = first if isinstance(first, list) else [first]
    started = time.perf_counter() - sent
    run_id = first[0]["runId"]
    for ws in others:
        await ws.write_message(json.dumps({"runId": run_id, "lastEventId": -1}))
    rest, *seen = await asyncio.gather(read_to_end(starter), *(read_to_end(ws) for ws in others))
    return {
        "run_id": run_id,
        "seen": [first + rest, *seen],
        "start_latency": started,
        "duration": time.perf_counter() - sent,
    }


async def load(server: JupyterProcess, runs: int, readers: int, message: str) -> dict[str, Any]:
    pid = server.proc.pid  # type: ignore[union-attr]
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(one_run(server, message, readers) for _ in range(runs)))
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    # Check: every reader got exactly the run's log, and every run completed.
    delivered = generated = 0
    for result in results:
        log = await asyncio.to_thread(server.get, f"/deltakit/runs/{result['run_id']}")
        assert log["status"] == "completed", log["status"]
        events = log["events"]
        assert [e["eventId"] for e in events] == list(range(len(events)))
        for seen in result["seen"]:
            assert seen == events, f"reader of {result['run_id']} got {len(seen)}/{len(events)}"
            delivered += len(seen)
        generated += len(events)
    return {
        "wall": wall,
        "cpu": cpu,
        "generated": generated,
        "delivered": delivered,
        "start_latency": [r["start_latency"] for r in results],
        "duration": [r["duration"] for r in results],
    }


async def soak(
    server: JupyterProcess, total: int, threads: int, sockets: int, message: str
) -> list[tuple[int, float, float]]:
    """Run `total` runs over `sockets` sockets; (runs done, seconds, RSS MiB) every total/10."""
    pid = server.proc.pid  # type: ignore[union-attr]
    step = max(1, total // 10)
    points: list[tuple[int, float, float]] = []
    started = done = 0
    t0 = time.perf_counter()
    first_run = ""

    def mark() -> None:
        rss = proc_status(pid)["VmRSS"] / 1024
        points.append((done, time.perf_counter() - t0, rss))
        print(f"  {done:>9,} runs  {points[-1][1]:>8.0f} s  RSS {rss:8.1f} MiB", flush=True)

    async def worker() -> None:
        nonlocal started, done, first_run
        ws = await connect(server)
        while started < total:
            thread = f"soak-{started % threads}"
            started += 1
            await ws.write_message(json.dumps({"message": message, "threadId": thread}))
            events: list[Event] = []
            while not events or events[-1]["type"] not in ("done", "error"):
                raw = await asyncio.wait_for(ws.read_message(), TIMEOUT)
                if raw is None:
                    raise RuntimeError("socket closed")
                data = json.loads(raw)
                events.extend(data if isinstance(data, list) else [data])
            if events[-1]["type"] != "done" or "runId" not in events[-1]:
                raise RuntimeError(f"run failed: {events[-1]}")
            first_run = first_run or events[0]["runId"]
            done += 1
            if done % step == 0:
                mark()
        ws.close()

    mark()
    await asyncio.gather(*(worker() for _ in range(sockets)))
    try:  # with persist off the first run is long gone (max_runs_in_memory)
        await asyncio.to_thread(server.get, f"/deltakit/runs/{first_run}")
        print("  the first run: still served")
    except urllib.error.HTTPError as exc:
        print(f"  the first run: {exc.code}")
    return points


def soak_main(args: argparse.Namespace) -> None:
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.persist]
    for persist in modes:
        flags = [
            f"--DeltakitApp.persist={persist}",
            "--DeltakitApp.max_subscriptions_per_minute=0",
        ]
        print(
            f"soak: {args.soak:,} runs of {args.message!r}, {args.threads} threads, "
            f"{args.sockets} sockets, persist {'on' if persist else 'off'}",
            flush=True,
        )
        with JupyterProcess(None, *flags) as server:
            points = asyncio.run(soak(server, args.soak, args.threads, args.sockets, args.message))
        after = [rss for runs, _, rss in points if runs >= args.soak // 10]
        wall = points[-1][1]
        print(
            f"  after the first tenth: RSS {min(after):.1f} to {max(after):.1f} MiB "
            f"(spread {max(after) - min(after):.1f} MiB); {args.soak / wall:.0f} runs/s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--readers", type=int, default=3, help="sockets per run, starter included")
    parser.add_argument("--chunks", type=int, default=1000, help="text chunks per run")
    parser.add_argument("--delay", type=float, default=0.002, help="seconds between chunks")
    parser.add_argument("--soak", type=int, default=0, help="short runs of a soak (see above)")
    parser.add_argument("--persist", choices=("on", "off", "both"), default="both")
    parser.add_argument("--threads", type=int, default=400, help="threads of a soak")
    parser.add_argument("--sockets", type=int, default=8, help="sockets of a soak")
    parser.add_argument("--message", default="echo hi there", help="a soak's message")
    args = parser.parse_args()
    if args.soak:
        soak_main(args)
        return
    message = f"count {args.chunks} delay {args.delay}" if args.delay else f"bench {args.chunks}"

    with JupyterProcess() as server:
        pid = server.proc.pid  # type: ignore[union-attr]
        asyncio.run(load(server, 2, 1, "count 50"))  # warm up: imports, first agents
        before = proc_status(pid)
        figures = asyncio.run(load(server, args.runs, args.readers, message))
        after = proc_status(pid)
        # The server still serves a plain request afterwards.
        urllib.request.urlopen(
            urllib.request.Request(
                f"{server.base}/deltakit/agents", headers={"Authorization": f"token {TOKEN}"}
            ),
            timeout=10,
        ).read()

    wall = figures["wall"]
    lat = sorted(figures["start_latency"])
    dur = sorted(figures["duration"])
    print(f"load: {args.runs} concurrent runs x {args.readers} readers, message {message!r}")
    print(f"  every event delivered to every reader: yes ({figures['delivered']:,} deliveries)")
    print(f"  events generated      {figures['generated']:>12,}")
    print(f"  wall time             {wall:>12.2f} s")
    print(f"  events generated/s    {figures['generated'] / wall:>12,.0f}")
    print(f"  events delivered/s    {figures['delivered'] / wall:>12,.0f}")
    print(
        f"  server CPU time       {figures['cpu']:>12.2f} s ({figures['cpu'] / wall:.0%} of a core)"
    )
    p50, top = statistics.median(lat) * 1000, lat[-1] * 1000
    print(f"  run start latency     p50 {p50:.0f} ms, max {top:.0f} ms")
    print(f"  run duration          p50 {statistics.median(dur):.2f} s, max {dur[-1]:.2f} s")
    print(f"  server RSS before     {before['VmRSS'] / 1024:>12.1f} MiB")
    print(f"  server RSS after      {after['VmRSS'] / 1024:>12.1f} MiB")
    print(f"  server peak RSS       {after['VmHWM'] / 1024:>12.1f} MiB")


if __name__ == "__main__":
    main()
