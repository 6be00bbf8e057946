"""The one key-redaction path (DESIGN 5, 8): every message that came from outside is scrubbed
here before it is stored, logged, exported or drawn.

Why one registry: a key can come back from anywhere (an error body, an in-stream error event, a
malformed frame quoted in our own message, an exception string holding a URL or a header), and
the code that sets a message rarely knows which keys exist. So the keys are *remembered* once,
where they are read (the config's key variables, the ingest key, the key a probe sends), and
:func:`scrub` knows all of them, whatever their shape, plus the shapes keys have in general.

What is caught for a remembered key K (8 characters or more; shorter values such as "ollama",
"EMPTY" or "none" are common placeholders and would redact ordinary words):

- K itself, URL-encoded, and base64 of any text holding it (so ``Basic base64(user:K)``);
- for K of 12 characters or more, partial echoes: a prefix of K next to a mask
  (``sk-abc...wxyz``, ``pxyCAN****bbcc``, ``sk-proj-***``), a suffix of K after a mask
  (``****wxyz``), and a word that starts with the first 8 characters of K or ends with its
  last 8. A bare 4-7 character fragment with no mask next to it is left alone: it would
  match years, ids and words far more often than a key.

Whatever the configuration: ``sk-...``/``sk-ant-...``/``AIza...``/``gsk_...`` tokens,
``Bearer`` and ``Basic`` credentials, and the values of ``api-key``/``x-api-key``/
``x-goog-api-key``/``Authorization`` headers and ``key=``/``api_key=``/``token=`` URL parameters.

Scrubbing is idempotent and memoised (the same error repeats probe after probe), so the final
guards where samples are written and events published cost a dictionary lookup for a message
that was already scrubbed when it was built.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

if TYPE_CHECKING:
    from llmscope_tui.model import Sample

__all__ = [
    "MIN_KEY_LEN",
    "MIN_PARTIAL_LEN",
    "REDACTED",
    "Redactor",
    "keys",
    "remember",
    "remember_environment",
    "remember_headers",
    "remember_url",
    "scrub",
    "scrub_event",
    "scrub_optional",
    "scrub_sample",
]

REDACTED = "[redacted]"
#: Shorter values are not treated as secrets (placeholders such as "ollama", "EMPTY", "none").
MIN_KEY_LEN = 8
#: From this length on, partial echoes (prefix/suffix, masked forms) of a key are caught too.
MIN_PARTIAL_LEN = 12
_EDGE = 8  # a word starting with K[:8] or ending with K[-8:] is K, cut short
_MEMO_SIZE = 2048
_MEMO_TEXT = 1024  # longer texts are not memoised (at most about 4 MB held)

_W = r"A-Za-z0-9_\-"  # the characters a key-like word is made of
_NOT_W_BEFORE = rf"(?<![{_W}])"
_NOT_W_AFTER = rf"(?![{_W}])"
_MASK = r"(?:\.{2,}|…+|\*+|•+|x{3,}|X{3,}|#{3,})"
#: A word, a mask, a word: the shape of a partial echo; checked against the keys by _masked().
_MASKED = re.compile(rf"{_NOT_W_BEFORE}([{_W}]{{0,64}}?)({_MASK})([{_W}]{{0,64}}){_NOT_W_AFTER}")
_TOKEN_CHARS = r"A-Za-z0-9._~+/=\-"
_VALUE_CHARS = r"^\s\"',;}"


def _token(chars: str) -> str:
    """A credential-like value: 8+ characters with a digit, or 20+ (so "Basic authentication"
    or "Authorization: required" stay as they are)."""
    return rf"(?:(?=[{chars}]*\d)[{chars}]{{8,}}|[{chars}]{{20,}})"


#: Secrets by their look alone, known or not.
_GENERIC = re.compile(
    r"(?<![A-Za-z0-9])(?:sk-ant-|sk-|gsk_|AIza)[A-Za-z0-9_\-]{6,}"
    rf"|(?P<scheme>(?i:\b(?:bearer|basic))\s+){_token(_TOKEN_CHARS)}"
    r"|(?P<param>(?<=[?&])(?i:key|api_key|apikey|api-key|access_token|token)=)[^&#\s\"']+"
    r"|(?P<header>(?i:\b(?:x-api-key|api-key|x-goog-api-key|authorization))[\"']?\s*[:=]\s*[\"']?)"
    rf"(?!(?i:bearer|basic)\s){_token(_VALUE_CHARS)}"
)


def _generic(match: re.Match[str]) -> str:
    """Keep the name (``Bearer``, ``key=``, ``x-api-key:``) and redact the value."""
    return (match.group("scheme") or match.group("param") or match.group("header") or "") + REDACTED


#: Substrings without which _GENERIC / _MASKED cannot match (in lower case for _GENERIC): a
#: few ``in`` tests spare most messages the regex scans.
_GENERIC_HINTS = ("sk-", "gsk_", "aiza", "bearer", "basic", "key=", "token=", "api-key", "authorization")
_MASK_HINTS = ("..", "…", "*", "•", "xxx", "XXX", "###")
_SENSITIVE_NAME = re.compile(r"(?i)(?:API_?KEY|_KEY|TOKEN|SECRET|PASSWORD|PASSWD)$")
#: Header and URL parameter names whose values are credentials (others, such as a Referer or
#: an api-version, are not remembered: their words would be redacted everywhere).
_SECRET_FIELD = re.compile(r"(?i)auth|key|token|secret|password|passwd|cookie|signature|^sig$|^code$")


def _b64_cores(value: str) -> set[str]:
    """The parts of base64(anything + value + anything) that depend on value alone, for each of
    the three alignments (so base64("user:" + key) is recognised whatever the user)."""
    raw = value.encode("utf-8")
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start = -(-8 * offset // 6)  # first character made of value bits only
        end = (8 * (offset + len(raw))) // 6
        core = encoded[start:end]
        if len(core) >= MIN_KEY_LEN:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))  # the URL-safe alphabet
    return cores


def _key_pattern(key: str) -> tuple[tuple[str, ...], re.Pattern[str]]:
    """The forms of one key (itself, URL-encoded, base64 runs; for a long key, words that start
    or end like it) as one pattern, and the substrings without which it cannot match: a few
    ``in`` tests spare most messages the scan."""
    forms = {key, quote(key, safe=""), *_b64_cores(key)}
    parts = [re.escape(f) for f in sorted(forms, key=len, reverse=True)]
    needles = {form[:_EDGE] for form in forms}
    if len(key) >= MIN_PARTIAL_LEN:
        head, tail = key[:_EDGE], key[-_EDGE:]
        needles |= {head, tail}
        parts.append(rf"{_NOT_W_BEFORE}{re.escape(head)}[{_W}]*")
        parts.append(rf"{_NOT_W_BEFORE}[{_W}]*{re.escape(tail)}{_NOT_W_AFTER}")
    return tuple(needles), re.compile("|".join(parts))


class Redactor:
    """Known secrets, a pattern per key for its forms, and a memo of texts already scrubbed."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._keys: frozenset[str] = frozenset()
        self._partial: tuple[str, ...] = ()
        #: Per key: substrings one of which is in every text its pattern matches, and the pattern.
        self._per_key: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = ()
        self._memo: dict[str, str] = {}
        self.add(secrets)

    @property
    def keys(self) -> frozenset[str]:
        return self._keys

    def add(self, secrets: Iterable[str | None]) -> bool:
        """Remember more secrets (shorter than MIN_KEY_LEN: ignored); True if any was new."""
        new = {s.strip() for s in secrets if s and len(s.strip()) >= MIN_KEY_LEN} - self._keys
        if not new:
            return False
        with self._lock:
            keys = sorted(self._keys | new, key=len, reverse=True)  # a key inside another: later
            self._per_key = tuple(_key_pattern(key) for key in keys)
            self._partial = tuple(k for k in keys if len(k) >= MIN_PARTIAL_LEN)
            self._keys = frozenset(keys)
            self._memo = {}
        return True

    def scrub(self, text: str) -> str:
        """text with every known key, partial echo and key-shaped token replaced by [redacted]."""
        done = self._memo.get(text)
        if done is not None:
            return done
        memo = self._memo
        out = text
        lower = text.lower()
        if any(hint in lower for hint in _GENERIC_HINTS):
            out = _GENERIC.sub(_generic, out)
        for needles, pattern in self._per_key:
            if any(needle in out for needle in needles):
                out = pattern.sub(REDACTED, out)
        if self._partial and any(hint in out for hint in _MASK_HINTS):
            out = _MASKED.sub(self._masked, out)
        if len(text) <= _MEMO_TEXT:  # messages repeat; whole error bodies are scrubbed once
            if len(memo) >= _MEMO_SIZE:
                memo.clear()  # bounded; a cleared memo only costs one more scrub per message
            memo[text] = out
            memo[out] = out
        return out

    def _masked(self, match: re.Match[str]) -> str:
        head, tail = match.group(1), match.group(3)
        for key in self._partial:
            head_ok = len(head) >= 3 and key.startswith(head)
            tail_ok = len(tail) >= 2 and key.endswith(tail)
            if head_ok and (tail_ok or (not tail and len(head) >= 4)):
                return REDACTED
            if tail_ok and not head and len(tail) >= 4:
                return REDACTED
        return match.group(0)


#: The process's registry: what every output path scrubs with.
_REGISTRY = Redactor()


def keys() -> frozenset[str]:
    """The secrets remembered so far (for tests and diagnostics; never print them)."""
    return _REGISTRY.keys


def remember(*secrets: str | None) -> None:
    """Remember secret values (a key, a header value). Cheap when they are known already."""
    known = _REGISTRY.keys
    fresh = [s for s in secrets if s and len(s) >= MIN_KEY_LEN and s not in known]
    if fresh:
        scheme = ("bearer ", "basic ")
        _REGISTRY.add(fresh + [s.split(None, 1)[1] for s in fresh if s.lower().startswith(scheme)])


def remember_url(url: str | None, *, path_is_secret: bool = False) -> None:
    """Secrets a URL may carry: its password and key-like query values; with
    ``path_is_secret`` (a webhook, whose URL is its credential) its long path segments too
    (Slack's and Discord's tokens; not the whole URL, whose first characters are "https://")."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query)
    except ValueError:
        return
    remember(parts.password, *(value for name, value in query if _SECRET_FIELD.search(name)))
    if path_is_secret:
        remember(*(segment for segment in parts.path.split("/") if len(segment) >= MIN_PARTIAL_LEN))


def remember_environment(env: Mapping[str, str], names: Iterable[str | None] = ()) -> None:
    """Remember the values of ``names`` and of every variable named like a secret
    (``*_API_KEY``, ``*_KEY``, ``*TOKEN``, ``*SECRET``, ``*PASSWORD``)."""
    wanted = {n for n in names if n}
    remember(*(value for name, value in env.items() if name in wanted or _looks_like_a_key(name, value)))


def remember_headers(headers: Iterable[tuple[str, str]]) -> None:
    """Remember the values of headers that carry credentials (Authorization, x-api-key, ...)."""
    remember(*(value for name, value in headers if _SECRET_FIELD.search(name)))


def _looks_like_a_key(name: str, value: str) -> bool:
    """A variable named like a secret whose value is one token (not a path, not a sentence)."""
    if "://" in value or value.startswith(("/", "~")):
        return False
    return bool(_SENSITIVE_NAME.search(name)) and len(value.split()) == 1


def scrub(text: str) -> str:
    """``text`` with every secret this process knows of (and key-shaped tokens) redacted."""
    return _REGISTRY.scrub(text)


def scrub_optional(text: str | None) -> str | None:
    return None if text is None else _REGISTRY.scrub(text)


def scrub_sample(sample: Sample) -> None:
    """The final guard where a sample is stored or published: its free-text fields (and, for an
    application's sample, the names its sender chose: project, provider, model)."""
    scrub = _REGISTRY.scrub
    if sample.error_message is not None:
        sample.error_message = scrub(sample.error_message)
    if sample.request_id is not None:
        sample.request_id = scrub(sample.request_id)
    if sample.source != "probe":
        sample.target, sample.provider, sample.model = (
            scrub(sample.target), scrub(sample.provider), scrub(sample.model)
        )


def scrub_event(event: dict[str, Any]) -> dict[str, Any]:
    """The final guard where an event is published: every string in it (a probe's sample event
    only has its message and request id, the rest being numbers and names we set)."""
    if event.get("event") == "sample" and event.get("source") == "probe":
        for name in ("error_message", "request_id"):
            value = event.get(name)
            if value is not None:
                event[name] = _REGISTRY.scrub(value)
        return event
    return {k: _scrub_value(v) for k, v in event.items()}


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return _REGISTRY.scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub_value(v) for v in value)
    return value
