"""TUI benchmarks (issue 5, "Cost of watching"): CPU of the UI, TTFT accuracy while it renders,
time to the first screen (on a fresh and on a big data file) and to quit, and a profile of where
the UI spends its time. The work is in tui_harness.py (children, pty, /proc), tui_cpu.py,
tui_ttft.py, tui_startup.py (first screen, start-up, quit) and tui_profile.py.

    python bench/bench_tui.py cpu --seconds 30 --repeat 3            # headless vs TUI 80x24 and 160x48
    python bench/bench_tui.py cpu --seconds 30 --fps 2               # the same at another --fps
    python bench/bench_tui.py cpu --db-rows 1000000                  # ... on a data file of 1M samples
    python bench/bench_tui.py cpu --also-src /tmp/before/src         # ... and another tree, same rounds
    python bench/bench_tui.py pass --passes 40                       # CPU of one refresh pass, in process
    python bench/bench_tui.py ttft --probes 300                      # TTFT error vs the wire: plain, headless, with UI, UI start
    python bench/bench_tui.py first-screen                           # 1,000,000 samples (file cached in /tmp)
    python bench/bench_tui.py profile --seconds 30                   # py-spy (pip install py-spy) on the TUI
    python bench/bench_tui.py startup --runs 5                       # first frame, first data row
    python bench/bench_tui.py quit --runs 5 [--external]             # q / q q / Ctrl-C -> process exit

Every run probes 20 targets (t01..t20, 1 s interval, cycling through the four wire protocols)
against the demo provider (llmscope_tui.demo.DemoProvider) in ANOTHER process (the
`serve-demo` subcommand), so the provider's CPU is not counted. The TUI runs as a child in a
real pseudo-terminal (TERM=xterm-256color, COLORTERM=truecolor, TIOCSWINSZ size) whose output
a thread keeps reading. CPU = utime+stime from /proc/<pid>/stat over a steady window after a
warm-up. Each run gets a fresh temp dir (config, data file, XDG dirs); children get SIGTERM
(SIGKILL after 15 s) and temp dirs are removed. Loopback only.

Goals: (1) TUI CPU at most 5 % of one core above headless with 20 targets at 1 s; (2) TTFT
accuracy (bench_probe.py accuracy) unchanged within 0.5 ms while the UI renders; (3) first
screen under 1 s with 1,000,000 samples in the data file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tui_cpu import cpu, pass_cost
from tui_harness import serve_demo, size_arg
from tui_profile import profile
from tui_startup import first_screen, quit_bench, startup
from tui_ttft import ttft, ttft_child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cpu", help="CPU %% of one core: headless vs TUI in a pty")
    c.add_argument("--seconds", type=float, default=30)
    c.add_argument("--warmup", type=float, default=5)
    c.add_argument("--repeat", type=int, default=3)
    c.add_argument("--fps", type=float, default=4.0)
    c.add_argument("--sizes", type=size_arg, nargs="+", default=[(80, 24), (160, 48)])
    c.add_argument("--db-rows", type=int, default=0, help="start from the first-screen file of this many samples")
    c.add_argument("--also-src", type=Path, nargs="*", default=[],
                   help="other source trees (a checkout's src/, e.g. before a change) run in the same rounds")
    pc = sub.add_parser("pass", help="CPU of one refresh pass in process (ms)")
    pc.add_argument("--sizes", type=size_arg, nargs="+", default=[(80, 24), (160, 48)])
    pc.add_argument("--passes", type=int, default=40)
    pc.add_argument("--repeat", type=int, default=3)
    t = sub.add_parser("ttft", help="TTFT error against the wire: plain, headless monitor, with the app, the app's first 5 s")
    t.add_argument("--probes", type=int, default=300)
    t.add_argument("--streams", type=int, nargs="+", default=[1, 50])
    t.add_argument("--driver", choices=("pty", "headless"), default="pty",
                   help="pty: the real Linux driver writing to a pseudo-terminal; headless: run_test")
    t.add_argument("--size", type=size_arg, default=(160, 48))
    t.add_argument("--repeat", type=int, default=1)
    f = sub.add_parser("first-screen", help="time to the first screen with 1,000,000 samples")
    f.add_argument("--rows", type=int, default=1_000_000)
    f.add_argument("--runs", type=int, default=3)
    f.add_argument("--size", type=size_arg, default=(160, 48))
    p = sub.add_parser("profile", help="py-spy profile of the TUI child")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--size", type=size_arg, default=(160, 48))
    p.add_argument("--fps", type=float, default=4.0)
    p.add_argument("--rate", type=int, default=200)
    p.add_argument("--top", type=int, default=15)
    st = sub.add_parser("startup", help="time to the first frame and the first data row, fresh data file")
    st.add_argument("--runs", type=int, default=5)
    st.add_argument("--size", type=size_arg, default=(80, 24))
    qp = sub.add_parser("quit", help="time from q / Ctrl-C to the TUI's exit, with the demo")
    qp.add_argument("--runs", type=int, default=5)
    qp.add_argument("--size", type=size_arg, default=(80, 24))
    qp.add_argument("--settle", type=float, default=2.0, help="seconds of probing after the first data")
    qp.add_argument("--external", action="store_true", help="20 targets on the demo in another process")
    s = sub.add_parser("serve-demo")
    s.add_argument("--port-file", required=True)
    k = sub.add_parser("_ttft-child")
    k.add_argument("--config", type=Path, required=True)
    k.add_argument("--probes", type=int, required=True)
    k.add_argument("--streams", type=int, nargs="+", required=True)
    k.add_argument("--order", required=True)
    k.add_argument("--driver", required=True)
    k.add_argument("--size", type=size_arg, required=True)
    k.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.what == "cpu":
        cpu(args.seconds, args.warmup, args.repeat, args.fps, args.sizes, args.db_rows, args.also_src)
    elif args.what == "pass":
        pass_cost(args.sizes, args.passes, args.repeat)
    elif args.what == "ttft":
        ttft(args.probes, args.streams, args.driver, args.size, args.repeat)
    elif args.what == "first-screen":
        first_screen(args.rows, args.runs, args.size)
    elif args.what == "profile":
        profile(args.seconds, args.warmup, args.size, args.fps, args.rate, args.top)
    elif args.what == "startup":
        startup(args.runs, args.size)
    elif args.what == "quit":
        quit_bench(args.runs, args.size, args.settle, args.external)
    elif args.what == "serve-demo":
        serve_demo(args.port_file)
    else:
        ttft_child(args.config, args.probes, args.streams, args.order.split(","), args.driver, args.size, args.out)


if __name__ == "__main__":
    main()
