"""Reading an HTTP/1.1 request off a blocking socket, for the tests' hand-written servers
(the ones that must stamp their own truth around raw socket calls)."""

from __future__ import annotations

import socket


def read_request(conn: socket.socket, data: bytes = b"") -> bytes:
    """Read one request (its head and its Content-Length body) from conn, data being what was
    already read; return what came after it (a pipelined next request's first bytes)."""

    def more() -> bytes:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the client closed the connection mid-request")
        return chunk

    while b"\r\n\r\n" not in data:
        data += more()
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        rest += more()
    return rest[length:]
