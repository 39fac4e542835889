"""Streaming figures for deltakit_nb on a real Jupyter server (figures, not a test).

    .venv/bin/python benchmarks/bench_stream.py [--chunks 20000] [--clients 20]

Prints, for a run of N chunks of the offline model: agno alone (no server), live start→done
over the socket, replay of the whole finished log, and that replay by many clients at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
os.environ.setdefault("AGNO_TELEMETRY", "false")

from jupyterproc import TOKEN, JupyterProcess
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


async def agno_alone(chunks: int) -> float:
    from deltakit_nb.offline import demo_agent

    agent = demo_agent(chunk_delay=0)
    start = time.perf_counter()
    async for _ in agent.arun(f"bench {chunks}", stream=True, stream_events=True):
        pass
    return time.perf_counter() - start


async def read_run(ws: object) -> int:
    """Read frames until the terminal event; return the number of events."""
    count = 0
    while True:
        raw = await ws.read_message()  # type: ignore[attr-defined]
        if raw is None:
            raise RuntimeError("socket closed")
        data = json.loads(raw)
        events = data if isinstance(data, list) else [data]
        count += len(events)
        if events[-1].get("type") in ("done", "error") and "eventId" in events[-1]:
            return count


async def connect(port: int, token: str, path: str = "/deltakit/ws") -> object:
    url = f"ws://127.0.0.1:{port}{path}"
    headers = {"Authorization": f"token {token}"} if token else {}
    return await websocket_connect(HTTPRequest(url, headers=headers), max_message_size=1 << 30)


async def live_and_replay(
    port: int, token: str, chunks: int, clients: int, path: str = "/deltakit/ws"
) -> dict[str, float]:
    ws = await connect(port, token, path)
    start = time.perf_counter()
    await ws.write_message(json.dumps({"message": f"bench {chunks}"}))  # type: ignore[attr-defined]
    first = json.loads(await ws.read_message())  # type: ignore[attr-defined]
    first = first[0] if isinstance(first, list) else first
    run_id = first["runId"]
    n = 1 + await read_run(ws)
    live = time.perf_counter() - start
    assert n == chunks + 2, n

    async def replay() -> float:
        sock = await connect(port, token, path)
        t0 = time.perf_counter()
        await sock.write_message(json.dumps({"runId": run_id, "lastEventId": -1}))  # type: ignore[attr-defined]
        got = await read_run(sock)
        assert got == chunks + 2, got
        sock.close()  # type: ignore[attr-defined]
        return time.perf_counter() - t0

    one = min([await replay() for _ in range(3)])
    t0 = time.perf_counter()
    await asyncio.gather(*(replay() for _ in range(clients)))
    many = time.perf_counter() - t0
    ws.close()  # type: ignore[attr-defined]
    return {"live": live, "replay": one, "fanout": many}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    alone = min(asyncio.run(agno_alone(args.chunks)) for _ in range(3))
    with JupyterProcess() as server:
        port = server.port
        asyncio.run(live_and_replay(port, TOKEN, 200, 2))  # warm up: agno import, first agent
        figures = asyncio.run(live_and_replay(port, TOKEN, args.chunks, args.clients))
    n = args.chunks
    print(f"deltakit_nb streaming figures, {n} chunks, {args.clients} replay clients")
    print(f"  agno alone (no server)            {alone:8.3f} s")
    print(
        f"  live start→done over the socket   {figures['live']:8.3f} s"
        f"   ({figures['live'] / alone:.2f} × agno alone)"
    )
    print(f"  replay of the whole log           {figures['replay']:8.3f} s")
    print(f"  {args.clients} clients replaying at once     {figures['fanout']:8.3f} s")


if __name__ == "__main__":
    main()
