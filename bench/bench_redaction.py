"""What key redaction costs per sample, with N keys known.

    python bench/bench_redaction.py                 # N = 0, 1, 5, 20
    python bench/bench_redaction.py --keys 1 50

Cases, each in ns per sample (best of 5 runs, so a busy machine moves it least):
  ok       the final guard on a successful sample (no message): what nearly every probe pays
  hit      the guard on an error sample whose message was scrubbed when it was built (memo hit)
  miss     scrubbing a 300-character error message never seen before (memo cleared each time)
  keyed    error_text() of a 300-character body that quotes one of the keys (a real redaction)
"""

from __future__ import annotations

import argparse
import secrets
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from llmscope_tui import redaction
from llmscope_tui.model import Sample
from llmscope_tui.wire.errors import error_text

BODY = "HTTP 500: The server had an error while processing your request. Sorry about that! " * 4


def _ns(fn: object, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e9  # type: ignore[arg-type]


def measure(n_keys: int) -> dict[str, float]:
    registry = redaction._REGISTRY = redaction.Redactor()  # a fresh registry with n keys
    keys = [f"sk-{secrets.token_urlsafe(30)}" for _ in range(n_keys // 2)]
    keys += [secrets.token_hex(20) for _ in range(n_keys - len(keys))]
    registry.add(keys)
    ok = Sample(ts=0.0, target="t", provider="p", model="m", ok=1, request_id="req_0123456789abcdef")
    err = Sample(ts=0.0, target="t", provider="p", model="m", error_message=redaction.scrub(BODY[:300]))
    body = BODY[:150] + (keys[0] if keys else "") + BODY[:150]

    def miss() -> None:
        registry._memo.clear()
        registry.scrub(BODY[:300])

    def keyed() -> None:
        registry._memo.clear()
        error_text(body)

    return {
        "ok": _ns(lambda: redaction.scrub_sample(ok), 20000),
        "hit": _ns(lambda: redaction.scrub_sample(err), 20000),
        "miss": _ns(miss, 2000),
        "keyed": _ns(keyed, 2000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, nargs="+", default=[0, 1, 5, 20])
    args = parser.parse_args()
    print(f"{'keys':>5} {'ok ns':>8} {'hit ns':>8} {'miss ns':>9} {'keyed ns':>9}")
    for n in args.keys:
        r = measure(n)
        print(f"{n:>5} {r['ok']:>8.0f} {r['hit']:>8.0f} {r['miss']:>9.0f} {r['keyed']:>9.0f}")


if __name__ == "__main__":
    main()
