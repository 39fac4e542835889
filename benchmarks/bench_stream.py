"""Streaming figures for deltakit_nb beside the seed recipe's server (figures, not a test).

    .venv/bin/python benchmarks/bench_stream.py [--chunks 20000] [--clients 20] [--no-peer]
                                                [--kernel-only]
    .venv/bin/python benchmarks/bench_stream.py --first-token   # start-up figures only
    .venv/bin/python benchmarks/bench_stream.py --team [--agent-only]  # live ÷ agno, agent and team

Starts a real Jupyter server with the extension and, unless --no-peer, the seed recipe's
FastAPI server from ../shared/peers (both on the same offline agno model), then measures, for
a run of N chunks: agno alone (no server), live start→done over the socket, replay of the
whole finished log, and that replay by many clients at once. It prints the figures and the
ratios; compare ratios from one run, never absolute times across runs (the machine is noisy).

Live runs and agno alone are measured in alternation, round by round (agno alone, with the
history db, live with the store on, live with persist off; in a shuffled order each round), so
that a slow spell of the machine falls on all of them alike; the live ratio is the ratio of
their medians (the ratio of the bests is printed beside it).

First-token latency (send → first text_delta) of the first run after a server start, with the
background warm-up (`DeltakitApp.warm_up`) off and on, beside a warm run on the same server;
and the time until a server answers, without and with the extension.

With --store postgres: live ÷ agno alone for a server on the SQLite store and one on a
PostgreSQL store (a real server, started as tests/pgserver.py does, with PostgreSQL's default
durability settings), each beside agno alone with the history db its server uses (SqliteDb,
PostgresDb), in alternating rounds.

The kernel-agent case (also alone with --kernel-only) does the same for an agent defined in a
notebook kernel that a real server started: live start→done of the run it publishes through the
server, against agno alone in that kernel (in a worker thread with its own loop, as the kernel
runs agents), no history db in either.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("AGNO_TELEMETRY", "false")

from jupyterproc import TOKEN, JupyterProcess, free_port
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

# The seed recipe as a runnable server (seed_recipe_server.py), next to this checkout by default.
PEERS = Path(os.environ.get("DELTAKIT_SEED_PEERS", ROOT.parent / "shared" / "peers"))
REPEATS = 3
ROUNDS = 11  # alternating rounds of the live / agno-alone comparison
STARTS = 9  # server starts with and without the extension, alternating
FIRST_RUNS = 5  # server starts per first-token scenario
WARM_RUNS = 5  # warm runs per server after its first one
WARMED_UP = "warmed up in"  # the server log's line when the background warm-up is done
# As on a user's machine: bytecode caches on (a sandbox may set PYTHONDONTWRITEBYTECODE, which
# recompiles every module at every start); the first start writes them.
USER_ENV = {"PYTHONDONTWRITEBYTECODE": ""}


class Target:
    def __init__(self, name: str, url: str, token: str = ""):
        self.name, self.url, self.token = name, url, token

    async def connect(self) -> WebSocketClientConnection:
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        return await websocket_connect(
            HTTPRequest(self.url, headers=headers), max_message_size=1 << 30
        )


async def read_run(ws: WebSocketClientConnection) -> list[dict[str, Any]]:
    """Every event up to the run's terminal one (frames hold one event or an array)."""
    events: list[dict[str, Any]] = []
    while True:
        raw = await ws.read_message()
        if raw is None:
            raise RuntimeError("socket closed")
        data = json.loads(raw)
        events.extend(data if isinstance(data, list) else [data])
        if events[-1].get("type") in ("done", "error"):
            return events


def check_bench_run(events: list[dict[str, Any]], chunks: int) -> None:
    """A whole `bench N` run: N chunks of "tok " (the server may put chunks that arrived
    together into one text_delta), between run_started and a completed done."""
    text = "".join(e["delta"] for e in events if e["type"] == "text_delta")
    assert text == "tok " * chunks, (len(text), chunks)
    assert events[-1]["type"] == "done" and events[-1].get("status", "completed") == "completed"


async def live(target: Target, chunks: int) -> tuple[float, str]:
    ws = await target.connect()
    start = time.perf_counter()
    await ws.write_message(json.dumps({"message": f"bench {chunks}"}))
    events = await read_run(ws)
    elapsed = time.perf_counter() - start
    ws.close()
    check_bench_run(events, chunks)
    return elapsed, events[0]["runId"]


async def replay(target: Target, run_id: str, chunks: int) -> float:
    ws = await target.connect()
    start = time.perf_counter()
    await ws.write_message(json.dumps({"runId": run_id, "lastEventId": -1}))
    events = await read_run(ws)
    elapsed = time.perf_counter() - start
    ws.close()
    check_bench_run(events, chunks)
    return elapsed


async def fanout(target: Target, run_id: str, chunks: int, clients: int) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(replay(target, run_id, chunks) for _ in range(clients)))
    return time.perf_counter() - start


async def agno_alone(chunks: int, history_db: str | None, db: Any = None) -> float:
    """agno alone, with a new db at `history_db` (a SQLite file) or with `db`."""
    from deltakit_nb.offline import demo_agent

    kwargs: dict[str, Any] = {}
    if history_db:
        from agno.db.sqlite import SqliteDb

        kwargs = {"db": SqliteDb(db_file=history_db), "add_history_to_context": True}
    if db is not None:
        kwargs = {"db": db, "add_history_to_context": True}
    agent = demo_agent(chunk_delay=0, **kwargs)
    start = time.perf_counter()
    async for _ in agent.arun(
        f"bench {chunks}", stream=True, stream_events=True, session_id=os.urandom(8).hex()
    ):
        pass
    return time.perf_counter() - start


TEAM_CHUNKS = "delegate researcher bench {}"


async def team_live(target: Target, chunks: int) -> float:
    """A `team` run whose member streams `chunks` chunks, live over the socket."""
    ws = await target.connect()
    start = time.perf_counter()
    message = TEAM_CHUNKS.format(chunks)
    await ws.write_message(json.dumps({"message": message, "agent": "team"}))
    events = await read_run(ws)
    elapsed = time.perf_counter() - start
    ws.close()
    member = "".join(e["delta"] for e in events if e["type"] == "member_text_delta")
    assert member == "tok " * chunks and events[-1]["status"] == "completed", events[-1]
    return elapsed


async def team_alone(chunks: int, history_db: str) -> float:
    """The same team run by agno alone (members' events streamed, the history db on)."""
    from agno.db.sqlite import SqliteDb

    from deltakit_nb.offline import demo_team

    team = demo_team(0, db=SqliteDb(db_file=history_db), add_history_to_context=True)
    start = time.perf_counter()
    async for _ in team.arun(
        TEAM_CHUNKS.format(chunks),
        stream=True,
        stream_events=True,
        session_id=os.urandom(8).hex(),
    ):
        pass
    return time.perf_counter() - start


def process_cpu(pid: int) -> float:
    """CPU seconds a process has used so far, all its threads (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds all PostgreSQL server processes of this machine have used so far."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().startswith("postgres"):
                    total += process_cpu(int(entry.name))
            except OSError:
                pass  # a backend that ended meanwhile
    return total


def nested_figures(chunks: int, history_db: str, team: bool, rounds: int = ROUNDS) -> None:
    """Live ÷ agno alone for an agent run and (unless `team` is False) a team run whose member
    streams the chunks, in alternating rounds on one server (store on). Beside the wall times,
    the CPU each one used (the server process's, all its threads, for a live run; this
    process's for agno alone), which a busy machine disturbs far less."""
    with JupyterProcess() as server:
        target = Target("deltakit_nb", server.ws_url, TOKEN)
        asyncio.run(live(target, 200))  # warm up

        async def agent_live() -> float:
            return (await live(target, chunks))[0]

        measures: dict[str, Callable[[], Awaitable[float]]] = {
            "agent_alone": lambda: agno_alone(chunks, history_db),
            "agent_live": agent_live,
        }
        if team:
            asyncio.run(team_live(target, 200))
            asyncio.run(team_alone(200, history_db))
            measures["team_alone"] = lambda: team_alone(chunks, history_db)
            measures["team_live"] = lambda: team_live(target, chunks)
        times: dict[str, list[float]] = {name: [] for name in measures}
        cpu: dict[str, list[float]] = {name: [] for name in measures}
        assert server.proc is not None
        pid = server.proc.pid
        shuffle = random.Random(7).shuffle
        for _ in range(rounds):
            order = list(measures)
            shuffle(order)
            for name in order:
                live_run = name.endswith("_live")
                before = process_cpu(pid) if live_run else time.process_time()
                times[name].append(asyncio.run(measures[name]()))
                after = process_cpu(pid) if live_run else time.process_time()
                cpu[name].append(after - before)
    med = {name: statistics.median(t) for name, t in times.items()}
    low = {name: min(t) for name, t in times.items()}
    mcpu = {name: statistics.median(t) for name, t in cpu.items()}
    print(f"\n{chunks} chunks, {rounds} alternating rounds: median (best) seconds")
    for kind in ("agent", "team") if team else ("agent",):
        alone, on = f"{kind}_alone", f"{kind}_live"
        print(
            f"{kind} run by agno alone (history db):  {med[alone]:8.3f} ({low[alone]:.3f})\n"
            f"{kind} run live start→done:            {med[on]:8.3f} ({low[on]:.3f})\n"
            f"{kind} live ÷ agno alone:              {med[on] / med[alone]:8.3f} × "
            f"(bests: {low[on] / low[alone]:.3f} ×)\n"
            f"{kind} CPU, server ÷ agno alone:       {mcpu[on] / mcpu[alone]:8.3f} × "
            f"({mcpu[on]:.3f} / {mcpu[alone]:.3f} s; "
            f"{(mcpu[on] - mcpu[alone]) / chunks * 1e6:+.2f} µs a chunk)"
        )


def store_figures(chunks: int, rounds: int = ROUNDS) -> None:
    """Live ÷ agno alone on the SQLite store and on a PostgreSQL store, in alternating rounds."""
    import tempfile

    from pgserver import PostgresServer

    with PostgresServer(settings=()) as pg:
        store_url, alone_url = pg.create_database("bench_live"), pg.create_database("bench_alone")
        from deltakit_nb.server.history import open_history_db

        # One db each for all rounds, as a server keeps its own: the db the server gives its
        # agents, SqliteDb or (for a postgresql:// URL) PostgresDb.
        history = str(Path(tempfile.mkdtemp()) / "history.sqlite")
        dbs = {"sqlite": open_history_db(history), "postgres": open_history_db(alone_url)}
        for db in dbs.values():
            asyncio.run(agno_alone(200, None, db))
        with (
            JupyterProcess() as sqlite_server,
            JupyterProcess(None, f"--DeltakitApp.store_url={store_url}") as pg_server,
        ):
            targets = {
                "sqlite_live": Target("sqlite", sqlite_server.ws_url, TOKEN),
                "postgres_live": Target("postgres", pg_server.ws_url, TOKEN),
            }
            measures: dict[str, Callable[[], Awaitable[float]]] = {
                "sqlite_alone": lambda: agno_alone(chunks, None, dbs["sqlite"]),
                "postgres_alone": lambda: agno_alone(chunks, None, dbs["postgres"]),
            }
            assert sqlite_server.proc is not None and pg_server.proc is not None
            pids = {"sqlite_live": sqlite_server.proc.pid, "postgres_live": pg_server.proc.pid}
            cpu: dict[str, list[float]] = {name: [] for name in targets}
            pg_cpu: dict[str, list[float]] = {name: [] for name in targets}
            for name, target in targets.items():
                asyncio.run(live(target, 200))  # warm up

                async def one(target: Target = target, name: str = name) -> float:
                    before, pg_before = process_cpu(pids[name]), postgres_cpu()
                    elapsed = (await live(target, chunks))[0]
                    await asyncio.sleep(0.1)  # the writer's last batch
                    cpu[name].append(process_cpu(pids[name]) - before)
                    pg_cpu[name].append(postgres_cpu() - pg_before)
                    return elapsed

                measures[name] = one
            times: dict[str, list[float]] = {name: [] for name in measures}
            shuffle = random.Random(7).shuffle
            for _ in range(rounds):
                order = list(measures)
                shuffle(order)
                for name in order:
                    times[name].append(asyncio.run(measures[name]()))
    med = {name: statistics.median(t) for name, t in times.items()}
    low = {name: min(t) for name, t in times.items()}
    print(
        f"\n{chunks} chunks, {rounds} alternating rounds, load average "
        f"{os.getloadavg()[0]:.2f}: median (best) seconds"
    )
    print(f"{'':40}{'SQLite':>18}{'PostgreSQL':>18}")
    for label, kind in (("agno alone (its history db)", "alone"), ("live start→done", "live")):
        sq, pq = f"sqlite_{kind}", f"postgres_{kind}"
        print(f"{label:40}{med[sq]:10.3f} ({low[sq]:.3f}){med[pq]:10.3f} ({low[pq]:.3f})")
    ratios = [med[f"{s}_live"] / med[f"{s}_alone"] for s in ("sqlite", "postgres")]
    bests = [low[f"{s}_live"] / low[f"{s}_alone"] for s in ("sqlite", "postgres")]
    print(
        f"{'live ÷ agno alone':40}{ratios[0]:8.3f} × ({bests[0]:.3f}){ratios[1]:8.3f} × "
        f"({bests[1]:.3f})"
    )
    sq_cpu, pg_server_cpu = (statistics.median(cpu[f"{s}_live"]) for s in ("sqlite", "postgres"))
    print(f"{'server CPU per live run (median)':40}{sq_cpu:18.3f}{pg_server_cpu:18.3f}")
    # A mean: /proc counts in 10 ms ticks, and a run costs PostgreSQL about that much.
    sq_db, pg_db = (statistics.mean(pg_cpu[f"{s}_live"]) for s in ("sqlite", "postgres"))
    print(f"{'PostgreSQL CPU per live run (mean)':40}{sq_db:18.3f}{pg_db:18.3f}")


def best(measure: Callable[[], Awaitable[float]], repeats: int = REPEATS) -> float:
    async def go() -> float:
        return min([await measure() for _ in range(repeats)])

    return asyncio.run(go())


def measure_target(target: Target, chunks: int, clients: int) -> dict[str, float]:
    asyncio.run(live(target, 200))  # warm up: imports, first agent, first session
    runs = [asyncio.run(live(target, chunks)) for _ in range(REPEATS)]
    run_id = runs[-1][1]
    return {
        "live": min(t for t, _ in runs),
        "replay": best(lambda: replay(target, run_id, chunks)),
        "fanout": best(lambda: fanout(target, run_id, chunks, clients)),
    }


def live_beside_agno(
    servers: dict[str, Target], chunks: int, history_db: str, rounds: int = ROUNDS
) -> dict[str, list[float]]:
    """Seconds per round of agno alone (without and with the history db) and of a live run
    on each server, measured in alternation so that the machine's slow spells hit all alike."""
    measures: dict[str, Callable[[], Awaitable[float]]] = {
        "alone": lambda: agno_alone(chunks, None),
        "alone_db": lambda: agno_alone(chunks, history_db),
    }
    for name, target in servers.items():
        asyncio.run(live(target, 200))  # warm up: imports, first agent, first session

        async def one(target: Target = target) -> float:
            return (await live(target, chunks))[0]

        measures[name] = one
    times: dict[str, list[float]] = {name: [] for name in measures}
    shuffle = random.Random(7).shuffle
    for _ in range(rounds):
        order = list(measures)
        shuffle(order)  # no measure always first or last in a round
        for name in order:
            times[name].append(asyncio.run(measures[name]()))
    return times


KERNEL_CELL = """
import asyncio, concurrent.futures, time
from agno.agent import Agent
from deltakit_nb import ChatWidget
from deltakit_nb.offline import OfflineModel

def bench_agent():
    return Agent(model=OfflineModel(chunk_delay=0), telemetry=False)

async def _alone(n):
    agent = bench_agent()
    start = time.perf_counter()
    async for _ in agent.arun(f"bench {n}", stream=True, stream_events=True):
        pass
    return time.perf_counter() - start

def alone(n):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _alone(n)).result()

print(ChatWidget(agent=bench_agent).agent)
"""


def kernel_agent(chunks: int, rounds: int = ROUNDS) -> dict[str, list[float]]:
    """Seconds per round: agno alone in a notebook kernel, and the live run of the same agent
    hosted by that kernel (start→done over the server's socket), in alternation."""
    import tempfile

    from jupyter_client.blocking.client import BlockingKernelClient
    from kernelclient import execute, wait_ready

    tmp = Path(tempfile.mkdtemp(prefix="deltakit-bench-kernel-"))
    with JupyterProcess(tmp, env={"JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}) as server:
        req = urllib.request.Request(
            server.base + "/api/sessions",
            method="POST",
            data=json.dumps(
                {"path": "b.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
            ).encode(),
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as response:
            kernel_id = json.loads(response.read())["kernel"]["id"]
        kc = BlockingKernelClient()
        kc.load_connection_file(str(tmp / "runtime" / f"kernel-{kernel_id}.json"))
        kc.start_channels()
        try:
            wait_ready(kc)
            agent = execute(kc, KERNEL_CELL).strip()
            target = Target("kernel", server.ws_url, TOKEN)

            async def one() -> float:
                ws = await target.connect()
                start = time.perf_counter()
                await ws.write_message(json.dumps({"message": f"bench {chunks}", "agent": agent}))
                events = await read_run(ws)
                elapsed = time.perf_counter() - start
                ws.close()
                check_bench_run(events, chunks)
                return elapsed

            def in_kernel() -> float:
                return float(execute(kc, f"print(alone({chunks}))"))

            asyncio.run(one())  # warm up
            in_kernel()
            times: dict[str, list[float]] = {"kernel_alone": [], "kernel_live": []}
            for i in range(rounds):
                if i % 2:
                    times["kernel_alone"].append(in_kernel())
                    times["kernel_live"].append(asyncio.run(one()))
                else:
                    times["kernel_live"].append(asyncio.run(one()))
                    times["kernel_alone"].append(in_kernel())
            return times
        finally:
            kc.stop_channels()


def print_kernel_agent(times: dict[str, list[float]], chunks: int) -> None:
    med = {name: statistics.median(t) for name, t in times.items()}
    low = {name: min(t) for name, t in times.items()}
    ratio = med["kernel_live"] / med["kernel_alone"]
    print(
        f"\nKernel agent, {chunks} chunks, {len(times['kernel_live'])} alternating rounds: "
        "median (best) seconds\n"
        f"agno alone in the kernel:               {med['kernel_alone']:8.3f} "
        f"({low['kernel_alone']:.3f})\n"
        f"live start→done, agent in the kernel:   {med['kernel_live']:8.3f} "
        f"({low['kernel_live']:.3f})\n"
        f"kernel live ÷ agno alone in the kernel: {ratio:8.3f} × "
        f"(bests: {low['kernel_live'] / low['kernel_alone']:.3f} ×)"
    )


def start_peer() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "AGNO_TELEMETRY": "false", "PEER_CHUNK_DELAY": "0"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "seed_recipe_server:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=PEERS,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import urllib.request

    for _ in range(300):
        try:
            urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/chat-agno-websocket/active-run", timeout=1
            )
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the seed peer did not start (pip install '.[bench]')")


def startup_overhead(repeats: int = STARTS) -> tuple[float, float]:
    """Median seconds until a Jupyter server answers, without and with the extension."""
    times: dict[bool, list[float]] = {False: [], True: []}
    env = USER_ENV
    for enabled in (False, True):
        with JupyterProcess(extension=enabled, env=env):
            pass
    for _ in range(repeats):
        for enabled in (False, True):
            server = JupyterProcess(extension=enabled, env=env)
            times[enabled].append(server.start())
            server.stop()
    return statistics.median(times[False]), statistics.median(times[True])


async def first_token(target: Target) -> float:
    """Seconds from sending a message to its first text_delta (the run is then read to its
    end, so the next run starts on a quiet server)."""
    ws = await target.connect()
    start = time.perf_counter()
    await ws.write_message(json.dumps({"message": "count 3"}))
    elapsed = 0.0
    while True:
        raw = await ws.read_message()
        if raw is None:
            raise RuntimeError("socket closed")
        data = json.loads(raw)
        for event in data if isinstance(data, list) else [data]:
            if event["type"] == "text_delta" and not elapsed:
                elapsed = time.perf_counter() - start
            if event["type"] in ("done", "error"):
                ws.close()
                assert event["type"] == "done" and elapsed, event
                return elapsed


def wait_for_log(server: JupyterProcess, needle: str, timeout: float = 60.0) -> float:
    start = time.perf_counter()
    while needle not in server.log():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"no {needle!r} in the server log")
        time.sleep(0.01)
    return time.perf_counter() - start


def first_token_figures(rounds: int = FIRST_RUNS) -> dict[str, list[float]]:
    """Seconds to the first token: the first run after a start with the warm-up off (sent as
    soon as the server answers), with it on (sent at once, so it meets the warm-up; and sent
    once the warm-up is done), warm runs on that last server, and the warm-up's duration."""
    times: dict[str, list[float]] = {
        "cold_off": [],
        "first_at_once": [],
        "first_after": [],
        "warm": [],
        "warm_up": [],
    }
    with JupyterProcess(env=USER_ENV) as server:  # writes the bytecode caches
        asyncio.run(first_token(Target("", server.ws_url, TOKEN)))
    for _ in range(rounds):
        with JupyterProcess(None, "--DeltakitApp.warm_up=False", env=USER_ENV) as server:
            times["cold_off"].append(asyncio.run(first_token(Target("", server.ws_url, TOKEN))))
        with JupyterProcess(env=USER_ENV) as server:
            target = Target("", server.ws_url, TOKEN)
            times["first_at_once"].append(asyncio.run(first_token(target)))
        with JupyterProcess(env=USER_ENV) as server:
            target = Target("", server.ws_url, TOKEN)
            times["warm_up"].append(wait_for_log(server, WARMED_UP))
            times["first_after"].append(asyncio.run(first_token(target)))
            times["warm"] += [asyncio.run(first_token(target)) for _ in range(WARM_RUNS)]
    return times


def print_startup(first: dict[str, list[float]], without: float, with_ext: float) -> None:
    med = {name: statistics.median(t) for name, t in first.items()}
    print(
        f"\nFirst token (send → first text_delta of 'count 3'), median of {FIRST_RUNS} server "
        f"starts ({FIRST_RUNS * WARM_RUNS} warm runs); milliseconds\n"
        f"first run, warm-up off:                 {med['cold_off'] * 1000:8.1f}\n"
        f"first run sent as the server answers:   {med['first_at_once'] * 1000:8.1f}"
        "   (waits for the warm-up)\n"
        f"first run after the warm-up:            {med['first_after'] * 1000:8.1f}\n"
        f"warm run, same server:                  {med['warm'] * 1000:8.1f}\n"
        f"first after warm-up ÷ warm:             {med['first_after'] / med['warm']:8.2f} ×\n"
        f"warm-up, from the server answering:     {med['warm_up'] * 1000:8.0f}"
    )
    print(
        f"server start without / with extension:  {without:8.3f} / {with_ext:.3f} s "
        f"(+{(with_ext - without) * 1000:.0f} ms, median of {STARTS})"
    )


def bytes_per_event(events: int = 100_000) -> float:
    """Memory held per buffered event of a long run (the log keeps encoded texts only)."""
    import tracemalloc

    from deltakit_nb import protocol
    from deltakit_nb.server.eventlog import EventLog

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    log = EventLog("3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
    for _ in range(events):
        log.append(protocol.text_delta("tok "))
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / len(log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--no-peer", action="store_true", help="skip the seed recipe server")
    parser.add_argument(
        "--first-token", action="store_true", help="only the first-token and start-up figures"
    )
    parser.add_argument(
        "--kernel-only", action="store_true", help="measure only the kernel-agent case"
    )
    parser.add_argument(
        "--team",
        action="store_true",
        help="only live ÷ agno alone, for an agent run and a team run (a member streams "
        "the chunks)",
    )
    parser.add_argument("--agent-only", action="store_true", help="with --team: no team run")
    parser.add_argument(
        "--store",
        choices=["postgres"],
        help="only live ÷ agno alone, on the SQLite store and on a PostgreSQL store",
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="with --store")
    args = parser.parse_args()
    n, clients = args.chunks, args.clients
    if args.store:
        store_figures(n, args.rounds)
        return
    if args.team:
        import tempfile

        history = str(Path(tempfile.mkdtemp()) / "history.sqlite")
        asyncio.run(agno_alone(200, history))
        nested_figures(n, history, not args.agent_only)
        return
    if args.first_token:
        first = first_token_figures()
        print_startup(first, *startup_overhead())
        return
    kernel_times = kernel_agent(n, ROUNDS if not args.kernel_only else 7)
    if args.kernel_only:
        print_kernel_agent(kernel_times, n)
        return

    import tempfile

    history = str(Path(tempfile.mkdtemp()) / "history.sqlite")
    asyncio.run(agno_alone(200, history))

    figures: dict[str, dict[str, float]] = {}
    # The server as shipped, and the same server with persist off: no event store and no
    # agno history db.
    with (
        JupyterProcess() as server,
        JupyterProcess(None, "--DeltakitApp.persist=False") as server_off,
    ):
        target = Target("deltakit_nb", server.ws_url, TOKEN)
        times = live_beside_agno(
            {"live": target, "live_off": Target("off", server_off.ws_url, TOKEN)}, n, history
        )
        figures["deltakit_nb"] = measure_target(target, n, clients)
    med = {name: statistics.median(t) for name, t in times.items()}
    low = {name: min(t) for name, t in times.items()}
    if not args.no_peer and not (PEERS / "seed_recipe_server.py").exists():
        print(f"no seed recipe server at {PEERS} (set DELTAKIT_SEED_PEERS): measuring ours only")
        args.no_peer = True
    if not args.no_peer:
        proc, port = start_peer()
        try:
            url = f"ws://127.0.0.1:{port}/api/chat-agno-websocket/ws"
            figures["seed"] = measure_target(Target("seed", url), n, clients)
        finally:
            proc.terminate()
            proc.wait(10)
    first = first_token_figures()
    without, with_ext = startup_overhead()
    per_event = bytes_per_event()

    print(f"\nStreaming {n} chunks of the offline agno model; best of {REPEATS}; seconds.")
    names = list(figures)
    print(
        f"\n{'':34}"
        + "".join(f"{name:>14}" for name in names)
        + ("      ratio" if "seed" in figures else "")
    )
    rows = [
        ("live start→done", "live"),
        ("replay of the whole log", "replay"),
        (f"{clients} clients replaying at once", "fanout"),
    ]
    for label, key in rows:
        line = f"{label:34}" + "".join(f"{figures[name][key]:14.3f}" for name in names)
        if "seed" in figures:
            line += f"   {figures['deltakit_nb'][key] / figures['seed'][key]:8.3f} ×"
        print(line)
    print(
        f"\nLive beside agno alone, {ROUNDS} alternating rounds: median (best) seconds\n"
        f"agno alone, no db:                      {med['alone']:8.3f} ({low['alone']:.3f})\n"
        f"agno alone, with the history db:        {med['alone_db']:8.3f} ({low['alone_db']:.3f})"
        "   (what the server runs)\n"
        f"live start→done, store on:              {med['live']:8.3f} ({low['live']:.3f})\n"
        f"live start→done, persist off:           {med['live_off']:8.3f} ({low['live_off']:.3f})"
        "   (no store, no history db)"
    )
    print(
        f"live ÷ agno alone with history db:      {med['live'] / med['alone_db']:8.3f} × "
        f"(bests: {low['live'] / low['alone_db']:.3f} ×)\n"
        f"live persist off ÷ agno alone, no db:   {med['live_off'] / med['alone']:8.3f} × "
        f"(bests: {low['live_off'] / low['alone']:.3f} ×)"
    )
    print_startup(first, without, with_ext)
    print(f"\nmemory per buffered event (100k run):   {per_event:8.1f} bytes")
    print_kernel_agent(kernel_times, n)


if __name__ == "__main__":
    main()
