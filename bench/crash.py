"""Crash safety: SIGKILL a headless run mid-probe, again and again, and check the data file.

    python bench/crash.py                  # 25 kills
    python bench/crash.py --kills 5 --db /tmp/crash.db

Each round starts `llmscope-tui --headless` (JSON log on stdout) on one data file against the
local fake provider (a child process, 8 targets every 20 ms), waits for its first sample and
then a random 0.5-2.5 s, kills it
with SIGKILL, then checks the file: `PRAGMA integrity_check`, and how many of the samples the
log announced are missing from it (a sample is logged after it was queued for the writer, so
the gap is what the last unwritten batch held: at most the writer's 0.1 s flush interval).
The next round reopens the same file, as a service manager would restart it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]

from soak import config_text  # the same fake-provider targets as the soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="llmscope-crash-"))
    db = args.db or folder / "crash.db"
    fake = subprocess.Popen([sys.executable, str(ROOT / "bench" / "soak.py"), "serve", "--seed", "1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert fake.stdout is not None and fake.stdin is not None
    config = folder / "crash.toml"
    config.write_text(config_text(fake.stdout.readline().strip(), 8, "20ms", db))
    env = {**os.environ, "SOAK_KEY": "sk-crash-not-a-real-key", "PYTHONPATH": str(ROOT / "src")}
    losses: list[int] = []
    bad = 0
    try:
        for round_ in range(1, args.kills + 1):
            log = folder / f"round{round_}.jsonl"
            with log.open("w") as out:
                proc = subprocess.Popen([sys.executable, "-m", "llmscope_tui", "--headless", "--config", str(config)],
                                        stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
                deadline = time.monotonic() + 60  # started: its first sample logged
                while '"event":"sample"' not in log.read_text() and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.5, 2.5))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            logged = set()
            for line in log.read_text().splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # the last line, cut by the kill
                if event.get("event") == "sample":
                    logged.add((event["target"], event["ts"]))
            with sqlite3.connect(db) as conn:
                ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
                stored = set(conn.execute("SELECT target, ts FROM samples"))
            missing = len(logged - stored)
            losses.append(missing)
            bad += ok != "ok"
            print(f"kill {round_:2d}: integrity {ok}, {len(logged)} samples logged this run, {missing} not in the file")
    finally:
        fake.stdin.close()
        fake.wait(10)
    print(f"{args.kills} SIGKILLs: integrity ok {args.kills - bad}/{args.kills}; samples lost per kill: "
          f"max {max(losses)}, median {sorted(losses)[len(losses) // 2]} (data file {db})")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
