"""How long the conversation list takes on a big event store (figures, not a timed test).

    .venv/bin/python benchmarks/bench_threads.py [--threads 5000] [--runs 10] [--events 200]

Fills a fresh SQLite event store with THREADS threads of RUNS finished runs of EVENTS events
each, then times `EventStore.thread_summaries` (the one query behind `GET threads`) for the
default limit and the largest, median of 9. The events are there so that a query that read
them would show it; the listing reads the runs table only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from deltakit_nb import protocol
from deltakit_nb.stores.sqlite import EventStore, batch_row


def fill(store: EventStore, threads: int, runs: int, events: int) -> None:
    conn = store._write  # bulk load in one transaction: the writer thread is idle here
    now = time.time() - threads * runs
    text = protocol.encode_text_delta("tok ", 0, '"x"')
    conn.execute("BEGIN")
    for t in range(threads):
        for r in range(runs):
            run_id = f"run-{t}-{r}"
            created = now + t * runs + r
            conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    f"thread-{t}",
                    "demo",
                    f"message {t}/{r}",
                    "completed",
                    created,
                    created + 1,
                ),
            )
            conn.execute(
                "INSERT INTO event_batches VALUES (?, ?, ?, ?)",
                batch_row(run_id, 0, [text] * events),
            )
    conn.execute("COMMIT")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore(Path(tmp) / "runs.sqlite")
        try:
            fill(store, args.threads, args.runs, args.events)
            size = (Path(tmp) / "runs.sqlite").stat().st_size
            print(
                f"store: {args.threads} threads x {args.runs} runs x {args.events} events, "
                f"{size / 2**20:.0f} MiB"
            )
            for limit in (50, 500):
                times = []
                for _ in range(9):
                    start = time.perf_counter()
                    listed = store.thread_summaries(limit)
                    times.append(time.perf_counter() - start)
                assert len(listed) == min(limit, args.threads)
                newest = args.threads - 1
                assert listed[0]["thread_id"] == f"thread-{newest}"
                assert listed[0]["title"] == f"message {newest}/0"
                assert listed[0]["runs"] == args.runs
                median = statistics.median(times) * 1e3
                print(f"thread_summaries(limit={limit}): median {median:.1f} ms")
        finally:
            store.close()


if __name__ == "__main__":
    main()
