"""llama.cpp's server (llama-cpp-python) probed through llmscope-tui's own probe: opt-in.

    python bench/bench_llamacpp.py                        # 30 probes
    python bench/bench_llamacpp.py --probes 10 --keep /tmp/llamacpp
    LLAMACPP_VENV=/elsewhere/venv python bench/bench_llamacpp.py

A third real server beside tests/test_real_servers.py's fakellm and LiteLLM, kept out of the test
suite and CI because llama-cpp-python is on PyPI only as a source package that compiles llama.cpp
for minutes. Install it once into a virtualenv of its own (with `gguf`, which writes the model):

    python3 -m venv .venv-servers/llamacpp
    CMAKE_BUILD_PARALLEL_LEVEL=2 nice .venv-servers/llamacpp/bin/pip install \
        'llama-cpp-python[server]==0.3.36' gguf==0.19.0

It runs with the interpreter of LLAMACPP_VENV, else of .venv-servers/llamacpp if there is one,
else this one; without llama_cpp there it says how to install it and exits 0. There is no model to download: bench/llama_model.py
writes a tiny random-weight llama model (0.5 MB) into a temporary folder. The server
(`python -m llama_cpp.server`, one thread, loopback, a free port, an API key) is started, waited
for (bounded) and stopped whatever happens; it is probed --probes times in a row through the
monitor's own client and probe_once as an OpenAI-compatible target, each probe's response bytes
kept. Each sample is checked against the server's own account of those bytes, read naively
(tests/real_server.py): ok, times in order, tokens out = the server's usage if it sent one (not
estimated), else its content chunks (estimated); ITL and tps consistent, or absent with TTFT =
latency when every token came in one read (a timing limit: see one_read); the request id one
the server sent. Exit 1 when any check fails: that is a reading of the wire to fix.
--keep DIR writes each response's headers and raw bytes there, for a replay test.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from llmscope_tui.model import Sample, Target
from real_server import (
    KEY,
    Exchange,
    Server,
    ServerFailed,
    account,
    free_port,
    probe,
    running,
    server_env,
)

READY_S = 120.0  # loading a 0.5 MB model takes about a second; the import of the server a few
VENV = ROOT / ".venv-servers" / "llamacpp"
INSTALL = (f"python3 -m venv {VENV} && CMAKE_BUILD_PARALLEL_LEVEL=2 nice {VENV}/bin/pip install "
           "'llama-cpp-python[server]==0.3.36' gguf==0.19.0")


def llama_python() -> Path | None:
    """The interpreter that has llama_cpp's server and gguf: LLAMACPP_VENV's, else VENV's if it
    exists, else this one."""
    venv = os.environ.get("LLAMACPP_VENV") or (str(VENV) if VENV.is_dir() else None)
    python = Path(venv) / "bin" / "python" if venv else Path(sys.executable)
    if not python.is_file():
        return None
    found = subprocess.run([python, "-c", "import llama_cpp.server.app, gguf"],
                           capture_output=True, timeout=120)
    return python if found.returncode == 0 else None


def one_read(exchange: Exchange) -> bool:
    """The first and the last content event carry one arrival stamp: TCP merged them into one
    read because the probe did not run between them (strace: no system call for 22 ms after the
    request was sent, on a busy 2-core machine), and a merged read has its newest segment's stamp
    (probe/netclock.py), so TTFT = latency and there is no ITL. A timing limit, not a misreading.
    Events end with a blank line; a chunk completes the events that end inside it."""
    ends = list(itertools.accumulate(size for size, _ in exchange.chunks))
    stamps, position = [], 0
    for event in bytes(exchange.body).split(b"\n\n"):
        position += len(event) + 2
        data = event.removeprefix(b"data: ")
        if data.startswith(b"{") and account("text/event-stream", "data: " + data.decode()).text:
            stamps.append(exchange.chunks[bisect.bisect_left(ends, position)][1])
    return len(stamps) > 1 and stamps[0] == stamps[-1]


def check(sample: Sample, exchange: Exchange, target: Target) -> list[str]:
    """What is wrong in the sample against the server's own account of the same bytes."""
    wire, problems = exchange.wire(), []
    if sample.ok != 1:
        return [f"not ok: {sample.error_kind}: {sample.error_message}"]
    if not (sample.ttft_ms and sample.latency_ms and 0 < sample.ttft_ms <= sample.latency_ms):
        problems.append(f"times out of order: ttft {sample.ttft_ms} latency {sample.latency_ms}")
    if not 1 <= wire.content_chunks <= target.max_tokens:
        problems.append(f"{wire.content_chunks} content chunks for max_tokens {target.max_tokens}")
    if wire.tokens_out is not None:
        expected = (wire.tokens_in, wire.tokens_out, 0)
    else:  # no usage: the content chunks are the tokens out, the prompt's length the tokens in
        expected = (sample.tokens_in, wire.content_chunks, 1)
    got = (sample.tokens_in, sample.tokens_out, sample.tokens_estimated)
    if got != expected:
        problems.append(f"tokens (in, out, estimated) {got} but the server's account is {expected}")
    out = sample.tokens_out or 0
    if one_read(exchange):  # nothing to time between the tokens: no ITL, no tps
        if (sample.itl_ms, sample.tps) != (None, None) or sample.ttft_ms != sample.latency_ms:
            problems.append(f"one read, yet itl {sample.itl_ms} tps {sample.tps}")
    elif out > 1 and (sample.itl_ms is None or sample.tps is None
                      or abs(sample.tps - 1000 / sample.itl_ms) > 1e-6 * sample.tps):
        problems.append(f"itl {sample.itl_ms} and tps {sample.tps} for {out} tokens")
    if sample.request_id is not None and sample.request_id not in exchange.headers.values():
        problems.append(f"request id {sample.request_id!r} is not a header the server sent")
    return problems


def median(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{statistics.median(present):.2f}" if present else "-"


def report(samples: list[Sample], exchanges: list[Exchange], target: Target) -> int:
    """Print one line per sample and the figures; the exit status (1: a check failed)."""
    failed = 0
    for i, (sample, exchange) in enumerate(zip(samples, exchanges, strict=True), 1):
        problems = check(sample, exchange, target)
        failed += bool(problems)
        wire = exchange.wire()
        print(f"#{i:02d} {'ok ' if not problems else 'BAD'} ttft {sample.ttft_ms or 0:7.2f} ms"
              f"  latency {sample.latency_ms or 0:7.2f} ms  chunks {wire.content_chunks:2d}"
              f"  out {sample.tokens_out}"
              f" (estimated {sample.tokens_estimated})  finish {wire.finish}"
              + ("  [all tokens in one read]" if one_read(exchange) else "")
              + "".join(f"\n    - {p}" for p in problems))
    first = exchanges[0].wire()
    headers = exchanges[0].headers
    print(f"\nok rate          {sum(s.ok for s in samples)}/{len(samples)}"
          f"   error kinds {dict(Counter(s.error_kind for s in samples if not s.ok)) or 'none'}")
    print(f"medians (ms)     ttft {median([s.ttft_ms for s in samples])}"
          f"  latency {median([s.latency_ms for s in samples])}"
          f"  itl {median([s.itl_ms for s in samples])}   tps {median([s.tps for s in samples])}")
    print(f"usage sent       tokens in {first.tokens_in}, out {first.tokens_out}"
          f" (None: the server sent no usage);  content chunks {first.content_chunks}")
    print(f"usage read       tokens_in {samples[0].tokens_in}, tokens_out {samples[0].tokens_out},"
          f" tokens_estimated: {dict(Counter(s.tokens_estimated for s in samples))}")
    print(f"request id       sample {samples[0].request_id!r};"
          f" x-request-id header {headers.get('x-request-id')!r}; chunk ids {sorted(first.ids)}")
    merged = sum(map(one_read, exchanges))
    print(f"one read         {merged}/{len(samples)} samples got every token in one read (the probe"
          " read late: TTFT = latency, no ITL; a timing limit, not a misreading)")
    ids = {s.request_id for s in samples}
    print(f"                 {len(ids - {None})} distinct request ids in {len(samples)} samples")
    print(f"finish           {dict(Counter(e.wire().finish for e in exchanges))}")
    replies = Counter(e.wire().text for e in exchanges)
    print(f"content type     {headers.get('content-type')!r};  reply {first.text!r}"
          f" ({replies[first.text]}/{len(exchanges)} replies the same)")
    print(f"\n{'every sample read right' if not failed else f'{failed} sample(s) read WRONG'}")
    return int(failed > 0)


def keep(exchanges: list[Exchange], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, exchange in enumerate(exchanges, 1):
        (folder / f"{i:02d}.body").write_bytes(bytes(exchange.body))
        (folder / f"{i:02d}.headers.json").write_text(json.dumps(dict(exchange.headers), indent=1))
    print(f"kept {len(exchanges)} responses in {folder}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=30, help="1-200 (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="the random model's seed")
    parser.add_argument("--seconds", type=float, default=300.0, help="bound on all the probes")
    parser.add_argument("--keep", type=Path, help="write each response's headers and bytes here")
    args = parser.parse_args()
    if not 1 <= args.probes <= 200:
        parser.error("--probes must be 1-200")
    python = llama_python()
    if python is None:
        print("llama-cpp-python (with gguf) is not installed here; this bench is opt-in "
              f"(it compiles llama.cpp for minutes):\n  {INSTALL}\n"
              "then run this again (or set LLAMACPP_VENV to a virtualenv that has it)")
        return 0
    with tempfile.TemporaryDirectory(prefix="llmscope-llamacpp-") as tmp:
        cwd = Path(tmp)
        started = time.perf_counter()
        subprocess.run([python, ROOT / "bench" / "llama_model.py", cwd / "tiny.gguf",
                        "--seed", str(args.seed)], check=True, capture_output=True, timeout=120)
        print(f"model written in {time.perf_counter() - started:.2f} s"
              f" ({(cwd / 'tiny.gguf').stat().st_size / 1e6:.2f} MB)")
        port = free_port()
        argv = [str(python), "-m", "llama_cpp.server", "--model", str(cwd / "tiny.gguf"),
                "--model_alias", "tiny-random", "--host", "127.0.0.1", "--port", str(port),
                "--api_key", KEY, "--n_threads", "1", "--n_ctx", "512"]
        base = f"http://127.0.0.1:{port}"
        server = Server("llamacpp", base, {"openai": "tiny-random"})
        target = server.target("openai", provider="openai-compatible")
        exchanges: list[Exchange] = []
        try:
            started = time.perf_counter()
            with running(argv, cwd, server_env(cwd, {}), f"{base}/v1/models", READY_S):
                print(f"server ready in {time.perf_counter() - started:.1f} s on {base}\n")

                async def run() -> list[Sample]:
                    with anyio.fail_after(args.seconds):
                        return await probe(target, args.probes, exchanges)

                samples = anyio.run(run)
        except ServerFailed as exc:
            print(f"llama.cpp's server failed: {exc}")
            return 1
        except TimeoutError:
            print(f"the {args.probes} probes did not finish within {args.seconds:g} s")
            return 1
        if args.keep:
            keep(exchanges, args.keep)
        return report(samples, exchanges, target)


if __name__ == "__main__":
    sys.exit(main())
