"""Our TTFT error against other clients, in one run, at 1, 10 and 50 streams (issue 12, item 6).

    python bench/bench_compare.py                                  # 200 requests per cell
    BENCH_TOOLS_VENV=/work/benchtools python bench/bench_compare.py --requests 200 --streams 1 10 50
    python bench/bench_compare.py --clients ours ours+TUI --streams 50   # a subset

Every cell gets a fresh truth server (bench_clock.py's, in another process): it stamps, on the
CLOCK_MONOTONIC all processes share, when each request arrived (kernel receive stamp) and right
before the first content chunk's send(). Error = the client's TTFT - (sent - received), in ms.
Clients, each against the same server shape:
  ours           probe_once on make_client (kernel clock), alone on its loop
  ours+monitor   the same on the loop of a headless Monitor probing 20 demo targets
  ours+TUI       the same on the loop of an LLMScopeApp's monitor thread while the app renders
                 20 demo targets (tui_ttft.py's harness, Textual headless driver, 160x48)
  openai SDK     AsyncOpenAI(stream=True): t0 right before create(), first stamp (perf_counter_ns)
                 when the first chunk with content is yielded; matched by x-request-id
  AIPerf         `aiperf profile`, per-request records matched by the X-Request-ID it sends
  GuideLLM       `guidellm run`, per-request records (wall-clock timings, no id) matched to the
                 truth by arrival order
The SDK and the tools are heavy and opt-in: they run from another virtualenv named by
$BENCH_TOOLS_VENV (pip install openai aiperf guidellm there); a missing one prints
"skipped: not installed". The SDK part runs as `<venv>/bin/python bench_compare.py _sdk ...`,
so this file imports only the standard library at the top. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = os.environ.get("BENCH_TOOLS_VENV", "")

CLIENTS = ["ours", "ours+monitor", "ours+TUI", "openai SDK", "AIPerf", "GuideLLM"]
Truth = dict[str, list[int]]  # request id -> [received_ns, first_content_sent_ns]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _venv_bin(name: str) -> Path | None:
    path = Path(VENV) / "bin" / name if VENV else None
    return path if path and path.exists() else None


# ----------------------------------------------------------------------------- openai SDK (tools venv)


async def _sdk_round(base_url: str, concurrency: int, requests: int) -> list[tuple[str, float]]:
    from openai import AsyncOpenAI  # type: ignore[import-not-found]  # only in the tools venv

    client = AsyncOpenAI(base_url=base_url + "/v1", api_key="bench", max_retries=0)
    out: list[tuple[str, float]] = []

    async def one(record: bool) -> None:
        t0 = time.perf_counter_ns()
        stream = await client.chat.completions.create(
            model="bench", messages=[{"role": "user", "content": "hi"}], stream=True, max_tokens=16)
        first = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter_ns()
        rid = stream.response.headers.get("x-request-id")
        if record and rid and first is not None:
            out.append((rid, (first - t0) / 1e6))

    await asyncio.gather(*(one(False) for _ in range(concurrency)))  # warm the pool, as for ours
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one(True)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()
    return out


def sdk_child(base_url: str, concurrency: int, requests: int, out: Path) -> None:
    out.write_text(json.dumps(asyncio.run(_sdk_round(base_url, concurrency, requests))))


# ----------------------------------------------------------------------------- cells


def _errors(measured: list[tuple[str, float]], truth: Truth) -> list[float]:
    return [ttft - (truth[rid][1] - truth[rid][0]) / 1e6 for rid, ttft in measured if rid in truth]


class Cell:
    """One client at one stream count against a fresh truth server."""

    def __init__(self, server_args: tuple[float, float, int]) -> None:
        import bench_clock

        self.server = bench_clock.ServerProcess(*server_args)
        self.server.stamps()  # nothing before the cell counts

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()


def ours(server_args: tuple[float, float, int], concurrency: int, requests: int,
         where: str, config: Path | None) -> dict[str, Any]:
    import bench_clock
    import tui_ttft

    with Cell(server_args) as cell:
        url = cell.server.base_url

        async def body() -> Any:
            return await bench_clock._round(url, concurrency, requests, "kernel", None)

        if where == "plain":
            measured = asyncio.run(body())
        elif where == "monitor":
            assert config is not None
            measured = asyncio.run(tui_ttft._with_monitor(config, body))["result"]
        else:
            assert config is not None
            measured = asyncio.run(tui_ttft._with_app(config, "headless", (160, 48), body))["result"]
        return {"errors": _errors(measured, cell.server.stamps())}


def sdk(server_args: tuple[float, float, int], concurrency: int, requests: int) -> dict[str, Any]:
    python = _venv_bin("python")
    if python is None or subprocess.run([str(python), "-c", "import openai"],
                                        capture_output=True).returncode:
        return {"skipped": "not installed"}
    with Cell(server_args) as cell, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sdk.json"
        subprocess.run([str(python), __file__, "_sdk", "--base-url", cell.server.base_url,
                        "--concurrency", str(concurrency), "--requests", str(requests),
                        "--out", str(out)], check=True)
        measured = [(rid, ttft) for rid, ttft in json.loads(out.read_text())]
        return {"errors": _errors(measured, cell.server.stamps())}


# ----------------------------------------------------------------------------- AIPerf, GuideLLM


# A local byte-level BPE: both tools need a HuggingFace tokenizer and this machine reaches no hub.
MAKE_TOKENIZER = """
import sys
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<eos>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train_from_iterator(["the quick brown fox jumps over the lazy dog " * 20], trainer)
PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>").save_pretrained(sys.argv[1])
"""


def _tokenizer(tmp: Path) -> Path:
    path = tmp / "tokenizer"
    if not path.exists():
        python = _venv_bin("python")
        assert python is not None
        subprocess.run([str(python), "-c", MAKE_TOKENIZER, str(path)], check=True,
                       capture_output=True)
    return path


def _tool(name: str, argv: list[str], tmp: Path) -> None:
    log = tmp / f"{name}.log"
    with log.open("w") as out:
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=tmp, timeout=900).returncode
    if rc:  # keep its log: the temp dir goes with the cell
        kept = Path(tempfile.gettempdir()) / f"bench_compare_{name}_{time.time_ns()}.log"
        kept.write_text(log.read_text() + "".join(
            p.read_text() for p in (tmp / "out" / "logs").glob("*.log")))
        raise RuntimeError(f"{name} exited {rc}; its log: {kept}")


def aiperf(server_args: tuple[float, float, int], concurrency: int, requests: int) -> dict[str, Any]:
    """Per request: AIPerf sends an X-Request-ID per request and exports it with its TTFT."""
    exe = _venv_bin("aiperf")
    if exe is None:
        return {"skipped": "not installed"}
    with Cell(server_args) as cell, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        _tool("aiperf", [str(exe), "profile", "-m", "bench", "--tokenizer", str(_tokenizer(tmp)),
                         "--url", cell.server.base_url, "--endpoint-type", "chat", "--streaming",
                         "--concurrency", str(concurrency), "--request-count", str(requests),
                         "--warmup-request-count", str(concurrency),  # pooled, as for the others
                         "--synthetic-input-tokens-mean", "16", "--output-tokens-mean", "4",
                         "--artifact-dir", str(tmp / "out"), "--export-level", "records",
                         "--ui-type", "none"], tmp)
        measured = []
        for line in (tmp / "out" / "profile_export.jsonl").read_text().splitlines():
            rec = json.loads(line)
            ttft = rec.get("metrics", {}).get("time_to_first_token")
            if rec["metadata"].get("benchmark_phase") == "profiling" and ttft:
                measured.append((rec["metadata"]["x_request_id"], float(ttft["value"])))
        return {"errors": _errors(measured, cell.server.stamps())}


def _match_by_arrival(starts: list[tuple[int, float]], truth: Truth) -> list[float]:
    """Errors for (request start on CLOCK_MONOTONIC, ttft_ms) records that carry no id: each
    start, in order, takes the first unclaimed arrival after it. Two requests that swap order on
    the way only swap the server's TTFTs, which differ by the server's own jitter."""
    arrivals = sorted(truth.values())
    errors, i = [], 0
    for start, ttft in sorted(starts):
        while i < len(arrivals) and arrivals[i][0] < start:
            i += 1  # a warm-up request's, or one the tool did not keep
        if i == len(arrivals):
            break
        received, sent = arrivals[i]
        i += 1
        errors.append(ttft - (sent - received) / 1e6)
    return errors


def guidellm(server_args: tuple[float, float, int], concurrency: int, requests: int) -> dict[str, Any]:
    """GuideLLM sends no request id; its JSON has per-request wall-clock timings, matched to the
    truth by arrival order (wall clock -> CLOCK_MONOTONIC by one offset taken here)."""
    exe = _venv_bin("guidellm")
    if exe is None:
        return {"skipped": "not installed"}
    with Cell(server_args) as cell, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        _tool("guidellm", [str(exe), "run", "--disable-console-interactive",
                           "--backend", (f"kind=openai_http,target={cell.server.base_url},model=bench,"
                                         "validate_backend=false"),
                           "--profile", f"kind=concurrent,streams={concurrency},warmup={concurrency}",
                           "--constraint", f"kind=max_requests,count={requests + concurrency}",
                           "--tokenizer", f"kind=hf_auto,model={_tokenizer(tmp)}",
                           "--data", "kind=synthetic_text,prompt_tokens=16,output_tokens=4",
                           "--output", f"kind=json,path={tmp / 'out.json'}"], tmp)
        offset = time.time_ns() - time.perf_counter_ns()
        bench = json.loads((tmp / "out.json").read_text())["benchmarks"][0]
        starts = []
        for rec in bench["requests"]["successful"]:
            t = rec["info"]["timings"]
            if t.get("first_token_iteration") and t.get("request_start"):
                starts.append((int(t["request_start"] * 1e9) - offset,  # its TTFT's own definition
                               (t["first_token_iteration"] - t["request_start"]) * 1000))
        starts = sorted(starts)[max(0, len(starts) - requests):]  # its warm-up ones are kept too
        return {"errors": _match_by_arrival(starts, cell.server.stamps())}


# ----------------------------------------------------------------------------- table


def _row(name: str, result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"  {name:<14} skipped: {result['skipped']}"
    e = result["errors"]
    return f"  {name:<14} {len(e):>5} {statistics.median(e):>8.3f} {_pct(e, 0.99):>8.3f}"


def run(requests: int, streams: list[int], server_args: tuple[float, float, int],
        clients: list[str]) -> None:
    import tui_harness

    first, gap, tokens = server_args
    print(f"TTFT error against the truth server (client TTFT - server's first-chunk send - request "
          f"arrival, ms); server: first token after {first * 1000:g} ms, then {tokens - 1} more every "
          f"{gap * 1000:g} ms; {requests} requests per cell; load average {os.getloadavg()[0]:.2f}",
          flush=True)
    with tui_harness.workdir("bench_compare_") as tmp:
        demo = tui_harness.DemoServer(tmp)
        try:
            config = tui_harness.write_config(tmp / "config.toml", demo.base_url, tmp / "samples.db",
                                              tui_harness.names())
            for c in streams:
                print(f"\n{c} stream{'s' if c > 1 else ''} (load average {os.getloadavg()[0]:.2f}):"
                      f"\n  {'client':<14} {'n':>5} {'median':>8} {'p99':>8}", flush=True)
                cells = [
                    ("ours", lambda c=c: ours(server_args, c, requests, "plain", None)),
                    ("ours+monitor", lambda c=c: ours(server_args, c, requests, "monitor", config)),
                    ("ours+TUI", lambda c=c: ours(server_args, c, requests, "ui", config)),
                    ("openai SDK", lambda c=c: sdk(server_args, c, requests)),
                    ("AIPerf", lambda c=c: aiperf(server_args, c, requests)),
                    ("GuideLLM", lambda c=c: guidellm(server_args, c, requests)),
                ]
                for name, cell in cells:
                    if name not in clients:
                        continue
                    try:
                        result = cell()
                    except RuntimeError as e:  # one tool's failure does not end the comparison
                        result = {"skipped": f"failed: {e}"}
                    print(_row(name, result), flush=True)
        finally:
            demo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what")
    s = sub.add_parser("_sdk")
    s.add_argument("--base-url", required=True)
    s.add_argument("--concurrency", type=int, required=True)
    s.add_argument("--requests", type=int, required=True)
    s.add_argument("--out", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--first-delay", type=float, default=0.05)
    parser.add_argument("--gap", type=float, default=0.03)
    parser.add_argument("--tokens", type=int, default=4)
    parser.add_argument("--clients", nargs="+", default=CLIENTS, choices=CLIENTS)
    args = parser.parse_args()
    if args.what == "_sdk":
        sdk_child(args.base_url, args.concurrency, args.requests, args.out)
    else:
        sys.path[:0] = [str(ROOT / "src"), str(BENCH)]
        run(args.requests, args.streams, (args.first_delay, args.gap, args.tokens), args.clients)


if __name__ == "__main__":
    main()
