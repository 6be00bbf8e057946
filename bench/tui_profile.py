"""Where the TUI spends its time: py-spy on the TUI child, samples split into UI, probing, core
and the event loop (bench_tui.py profile; pip install py-spy)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tui_harness import CLI, DemoServer, PtyChild, child_env, names, workdir, write_config

UI_PARTS = ("/textual/", "/rich/", "llmscope_tui/tui/")
PROBE_PARTS = ("llmscope_tui/probe/", "/httpx/", "/httpcore/", "/h11/", "/anyio/streams/", "/ssl.py")


def _frames(line: str) -> tuple[list[tuple[str, str]], int]:
    stack, _, count = line.rpartition(" ")
    frames = []
    for frame in stack.split(";"):
        m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
        if m:
            frames.append((m.group(2), m.group(1)))
    return frames, int(count)


def _short(path: str, func: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{func}"


def profile(seconds: float, warmup: float, size: tuple[int, int], fps: float, rate: int, top: int) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("profile needs py-spy: .venv/bin/pip install py-spy")
    with workdir("bench_tui_prof_") as tmp:
        demo = DemoServer(tmp)
        config = write_config(tmp / "config.toml", demo.base_url, tmp / "samples.db", names())
        pty = PtyChild([*CLI, "--tui", "--config", str(config), "--fps", str(fps)], size, child_env(tmp))
        raw = tmp / "profile.txt"
        try:
            time.sleep(warmup)
            subprocess.run([spy, "record", "--pid", str(pty.proc.pid), "--duration", str(int(seconds)), "--rate",
                            str(rate), "--format", "raw", "--full-filenames", "--nolineno", "--nonblocking",
                            "--output", str(raw)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            pty.close()
            demo.close()
        lines = [ln for ln in raw.read_text().splitlines() if ln.strip()]
    kinds: Counter[str] = Counter()
    own: dict[str, Counter[str]] = {}
    cum: Counter[str] = Counter()
    total = 0
    for line in lines:
        frames, n = _frames(line)
        if not frames:
            continue
        total += n
        # the part of the stack below the event loop's callback (Handle._run) or its select, or a thread's
        cut = max((i for i, (p, f) in enumerate(frames) if f.endswith(("Handle._run", "._run_once"))), default=-1)
        work = frames[cut + 1:]
        paths = [p for p, _ in work]
        if any(part in p for p in paths for part in UI_PARTS):
            kind = "UI (textual, rich, llmscope_tui/tui)"
        elif any(part in p for p in paths for part in PROBE_PARTS):
            kind = "probing (probe, httpx/httpcore/h11, anyio streams)"
        elif any("llmscope_tui/" in p for p in paths):
            kind = "core (monitor, store, spc, costs)"
        else:
            kind = "event loop / other (select, asyncio, threads)"
        kinds[kind] += n
        own.setdefault(kind, Counter())[_short(*(work or frames)[-1])] += n
        if kind.startswith("UI"):
            for key in {_short(*f) for f in work}:
                cum[key] += n
    busy = total / rate / seconds * 100
    print(f"py-spy on the TUI ({size[0]}x{size[1]}, --fps {fps:g}, 20 targets at 1 s), {seconds:g} s at {rate} Hz: "
          f"{total} non-idle samples = {busy:.1f} % of one core")
    for kind, n in kinds.most_common():
        print(f"  {kind:<52} {n / rate / seconds * 100:5.1f} % of a core ({n / total * 100:.0f} % of samples); "
              f"top own: {', '.join(k for k, _ in own[kind].most_common(3))}")
    ui = sum(n for k, n in kinds.items() if k.startswith("UI"))
    ours = Counter({k: n for k, n in cum.items() if k.startswith("llmscope_tui/")})
    for title, counter in (("own", own.get(next((k for k in kinds if k.startswith("UI")), ""), Counter())),
                           ("cumulative", cum), ("cumulative, llmscope_tui only", ours)):
        print(f"UI functions by {title} time (% of UI samples; {ui} samples = {ui / rate / seconds * 100:.1f} % of a core):")
        for key, n in counter.most_common(top):
            print(f"  {n / max(1, ui) * 100:5.1f} %  {n / rate / seconds * 100:5.2f} % core  {key}")
