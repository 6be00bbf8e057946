"""wire/framing.py: SSE (WHATWG rules, DESIGN 2) and NDJSON framing over arbitrary reads.

The stamp rule: a frame carries the arrival stamp of the read that delivered the byte that
completed it (the end of the blank line for SSE, the newline for NDJSON), whatever the split.
"""

from __future__ import annotations

import pytest

from llmscope_tui.wire.framing import Frame, NDJSONDecoder, SSEDecoder

SSE_STREAM = (
    b": hello, a comment\n"
    b"event: message_start\n"
    b'data: {"type":"message_start"}\n'
    b"\n"
    b"event: ping\n"  # an event with no data line: not dispatched
    b"\n"
    b"data: first line\n"
    b"data:second line\n"  # no space after the colon
    b"id: 7\n"
    b"retry: 100\n"
    b"\n"
    b"data: caf\xc3\xa9 \xe2\x82\xac\n"  # multi-byte UTF-8 a split can cut in two
    b"\n"
    b"data: [DONE]\n"
    b"\n"
)
SSE_FRAMES = [
    ("message_start", '{"type":"message_start"}'),
    (None, "first line\nsecond line"),
    (None, "café €"),
    (None, "[DONE]"),
]
NDJSON_STREAM = b'{"a":1}\n\n{"b":"caf\xc3\xa9"}\r\n   \n{"done":true}\n'


def _sse(chunks: list[tuple[bytes, int]], close_ns: int = 999) -> list[Frame]:
    decoder = SSEDecoder()
    frames = [frame for chunk, ns in chunks for frame in decoder.feed(chunk, ns)]
    return frames + decoder.close(close_ns)


def _ndjson(chunks: list[tuple[bytes, int]], close_ns: int = 999) -> list[Frame]:
    decoder = NDJSONDecoder()
    frames = [frame for chunk, ns in chunks for frame in decoder.feed(chunk, ns)]
    return frames + decoder.close(close_ns)


def _bytewise(stream: bytes) -> list[tuple[bytes, int]]:
    """One read per byte, stamped with the byte's index: a frame's stamp names its last byte."""
    return [(stream[i : i + 1], i) for i in range(len(stream))]


def _meaning(frames: list[Frame]) -> list[tuple[str | None, str]]:
    return [(frame.event, frame.data) for frame in frames]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_sse_split_at_every_byte_boundary_gives_the_same_frames_and_stamps(ending: bytes) -> None:
    stream = SSE_STREAM.replace(b"\n", ending)
    whole = _sse([(stream, 1)])
    assert _meaning(whole) == SSE_FRAMES
    assert [frame.arrived_ns for frame in whole] == [1] * len(SSE_FRAMES)
    ends = [frame.arrived_ns for frame in _sse(_bytewise(stream))]
    assert _meaning(_sse(_bytewise(stream))) == SSE_FRAMES
    for cut in range(len(stream) + 1):
        frames = _sse([(stream[:cut], 1), (stream[cut:], 2)])
        assert _meaning(frames) == SSE_FRAMES, cut
        # completed by a byte of the first read -> stamped 1, else 2
        assert [frame.arrived_ns for frame in frames] == [1 if end < cut else 2 for end in ends], cut


def test_a_crlf_split_between_cr_and_lf_ends_the_line_once() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\n\r", 1) == [Frame("a", 1)]  # the CR already ended the blank line
    assert decoder.feed(b"\n", 2) == []  # the LF of that CRLF is not another blank line
    assert decoder.feed(b"data: b\r", 3) == []
    assert decoder.feed(b"\ndata: c\n\n", 4) == [Frame("b\nc", 4)]


def test_several_frames_in_one_read_share_its_stamp() -> None:
    decoder = SSEDecoder()
    frames = decoder.feed(b"data: 1\n\ndata: 2\n\nevent: e\ndata: 3\n\ndata: 4", 5)
    assert frames == [Frame("1", 5), Frame("2", 5), Frame("3", 5, "e")]
    assert decoder.feed(b"\n\n", 6) == [Frame("4", 6)]


def test_comments_and_events_without_data_are_not_dispatched() -> None:
    decoder = SSEDecoder()
    stream = b": keep-alive\n\nevent: ping\n\nid: 3\n\nretry: 5\n\n:\n\n"
    assert decoder.feed(stream, 1) == []
    assert decoder.close(2) == []
    # the event name of an undispatched event does not leak into the next one
    assert decoder.feed(b"event: ping\n\ndata: x\n\n", 3) == [Frame("x", 3, None)]


def test_an_empty_data_line_is_still_a_data_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data:\n\ndata\n\ndata: \ndata: \n\n", 1) == [
        Frame("", 1), Frame("", 1), Frame("\n", 1)
    ]


def test_a_leading_byte_order_mark_is_skipped() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef\xbb", 1) == []
    assert decoder.feed(b"\xbfdata: x\n\n", 2) == [Frame("x", 2)]


def test_sse_close_dispatches_a_last_event_left_without_a_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: [DONE]", 1) == [Frame("a", 1)]
    assert decoder.close(9) == [Frame("[DONE]", 9)]
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail\n", 1) == []
    assert decoder.close(9) == [Frame("tail", 9)]
    decoder = SSEDecoder()
    assert decoder.feed(b"event: only-a-name\n", 1) == []
    assert decoder.close(9) == []


def test_ndjson_split_at_every_byte_boundary_gives_the_same_lines_and_stamps() -> None:
    expected = ['{"a":1}', '{"b":"café"}', '{"done":true}']
    whole = _ndjson([(NDJSON_STREAM, 1)])
    assert [frame.data for frame in whole] == expected
    ends = [frame.arrived_ns for frame in _ndjson(_bytewise(NDJSON_STREAM))]
    for cut in range(len(NDJSON_STREAM) + 1):
        frames = _ndjson([(NDJSON_STREAM[:cut], 1), (NDJSON_STREAM[cut:], 2)])
        assert [frame.data for frame in frames] == expected, cut
        assert [frame.arrived_ns for frame in frames] == [1 if end < cut else 2 for end in ends], cut


def test_ndjson_keeps_a_partial_line_and_flushes_a_last_line_on_close() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a":', 1) == []
    assert decoder.feed(b'1}\n{"b":2}\n{"done"', 2) == [Frame('{"a":1}', 2), Frame('{"b":2}', 2)]
    assert decoder.feed(b":true}", 3) == []
    assert decoder.close(4) == [Frame('{"done":true}', 4)]
    assert decoder.close(5) == []
    blank = NDJSONDecoder()
    assert blank.feed(b"\n  \n", 1) == [] and blank.close(2) == []
