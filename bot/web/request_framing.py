"""Reading one HTTP/1.x request whole, from its bytes as they arrive: where it ends, or why the
event loop refuses it itself (408, 413, 431, or 400 for broken chunking).

The head is parsed by gunicorn's own parser, so the loop and the request thread never disagree
on where a request ends; the body is followed (Content-Length or chunks) without keeping more
than the request's own bytes, exactly as received.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.http.message import Request
from gunicorn.http.unreader import Unreader

#: How long a client has to send one whole request, head and body. Webex sends a few KiB at
#: once; this only ever cuts off clients that trickle. To become a setting (bot/settings.py).
REQUEST_READ_SECONDS = 10.0
#: Largest request head (request line and headers) or chunked trailer section buffered.
HEAD_LIMIT_BYTES = 64 * 1024
#: Largest chunk-size line (gunicorn's own default limit for it).
CHUNK_LINE_LIMIT = 8190

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def _answer(status: int, reason: str, body: bytes, content_type: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


TOO_LARGE = _answer(413, "Content Too Large",
                    json.dumps({"error": "body too large"}, separators=(",", ":")).encode()
                    + b"\n", "application/json")
TIMED_OUT = _answer(408, "Request Timeout", b"request not received in time\n", "text/plain")
HEAD_TOO_LARGE = _answer(431, "Request Header Fields Too Large", b"request head too large\n",
                         "text/plain")
BAD_CHUNKS = _answer(400, "Bad Request", b"invalid chunked body\n", "text/plain")


class Refused(Exception):
    """A request the event loop answers itself, with this response, and then closes."""

    def __init__(self, response: bytes) -> None:
        super().__init__(response.split(b"\r\n", 1)[0].decode("latin-1"))
        self.response = response


class MemoryUnreader(Unreader):  # type: ignore[misc]
    """The parser's source: the bytes of complete requests the loop fed it. Reading past them
    finds the end of the stream instead of waiting on the socket."""

    def feed(self, data: bytes) -> None:
        """Append one request's bytes."""
        self.buf.seek(0, os.SEEK_END)
        self.buf.write(data)

    def chunk(self, size_hint: int | None = None) -> bytes:
        """Nothing beyond what was fed."""
        return b""

    def held(self) -> bytes:
        """The bytes fed but not read by the parser."""
        return bytes(self.buf.getvalue())


@dataclass(frozen=True)
class Framing:
    """How the body of a request ends, as gunicorn's parser reads its head."""

    length: int | None  # Content-Length (0 without a body); None when chunked
    expects_continue: bool


def framing(cfg: Any, client: Any, head: bytes) -> Framing | None:
    """Parse a complete head with gunicorn's own parser; None when it refuses the head (the
    request thread's parser will refuse it the same way, and answer)."""
    source = MemoryUnreader()
    source.feed(head)
    try:
        request = Request(cfg, source, client)
    except Exception:
        return None
    reader = request.body.reader
    expects = bool(getattr(request, "_expected_100_continue", False))
    if isinstance(reader, ChunkedReader):
        return Framing(None, expects)
    if isinstance(reader, LengthReader):
        return Framing(int(reader.length), expects)
    return None


def chunk_size(line: bytes) -> int:
    """The size on a chunk-size line (extensions ignored), read as gunicorn reads it."""
    size, *extension = line.split(b";", 1)
    if extension:
        size = size.rstrip(b" \t")
    if not size or any(byte not in HEX_DIGITS for byte in size):
        raise Refused(BAD_CHUNKS)
    return int(size, 16)


class Incoming:
    """One request being read: the bytes so far, and how far its framing has been followed.

    ``advance()`` is called after every read; each call only looks at what is new, so a body
    sent a byte at a time costs linear work. The bytes are kept exactly as received.
    """

    SIZE, DATA, TRAILER = range(3)

    def __init__(self, data: bytes, deadline: float, max_body: int) -> None:
        self.buf = bytearray(data)
        self.deadline = deadline
        self.max_body = max_body
        self.head_end = -1
        self.framing: Framing | None = None
        self.continued = False  # "100 Continue" sent
        self._searched = 0  # where the search for the end of the head resumes
        self._lf_checked = 0
        self._state = self.SIZE
        self._pos = 0  # chunked: start of the current size line, chunk data or trailers
        self._line_searched = 0
        self._chunk_end = 0
        self._decoded = 0

    @property
    def wants_continue(self) -> bool:
        """The client waits for "100 Continue" before it sends the body it announced."""
        f = self.framing
        return (f is not None and f.expects_continue and not self.continued
                and f.length != 0)

    def advance(self, cfg: Any, client: Any) -> int | None:
        """Where the request ends in ``buf`` once it is all there, else None.

        Raises :class:`Refused` for a request the loop answers itself.
        """
        if self.head_end < 0 and not self._read_head(cfg, client):
            return None
        if self.framing is None:  # gunicorn's parser refuses the head: it answers
            return self.head_end
        if self.framing.length is not None:
            body_end = self.head_end + self.framing.length
            return body_end if len(self.buf) >= body_end else None
        chunks_end = self._follow_chunks()
        if (chunks_end is None
                and len(self.buf) - self.head_end > 2 * self.max_body + HEAD_LIMIT_BYTES):
            raise Refused(TOO_LARGE)  # far more framing than body: tiny chunks, long extensions
        return chunks_end

    def _read_head(self, cfg: Any, client: Any) -> bool:
        """Find the end of the head and read the framing from it; False until it is all here."""
        buf = self.buf
        end = buf.find(b"\r\n\r\n", self._searched)
        if end < 0:
            if self._bare_lf():  # the parser refuses these at once, without reading more
                self.head_end = len(buf)
                return True
            if len(buf) > HEAD_LIMIT_BYTES:
                raise Refused(HEAD_TOO_LARGE)
            self._searched = max(0, len(buf) - 3)
            return False
        self.head_end = end + 4
        if self.head_end > HEAD_LIMIT_BYTES:
            raise Refused(HEAD_TOO_LARGE)
        self.framing = framing(cfg, client, bytes(buf[:self.head_end]))
        if self.framing is not None and (self.framing.length or 0) > self.max_body:
            raise Refused(TOO_LARGE)
        self._pos = self._line_searched = self.head_end
        return True

    def _bare_lf(self) -> bool:
        """Whether the new bytes hold a line feed without its carriage return."""
        buf = self.buf
        at = buf.find(b"\n", self._lf_checked)
        while at >= 0:
            if at == 0 or buf[at - 1] != 0x0D:
                return True
            at = buf.find(b"\n", at + 1)
        self._lf_checked = len(buf)
        return False

    def _follow_chunks(self) -> int | None:
        """Follow the chunks received so far; the end of the trailers once they are in."""
        buf = self.buf
        while True:
            if self._state == self.SIZE:
                line_end = buf.find(b"\r\n", self._line_searched)
                if line_end < 0:
                    if len(buf) - self._pos > CHUNK_LINE_LIMIT:
                        raise Refused(BAD_CHUNKS)
                    self._line_searched = max(self._pos, len(buf) - 1)
                    return None
                size = chunk_size(bytes(buf[self._pos:line_end]))
                self._pos = self._line_searched = line_end + 2
                if size == 0:
                    self._state = self.TRAILER
                    continue
                self._decoded += size
                if self._decoded > self.max_body:
                    raise Refused(TOO_LARGE)
                self._chunk_end = self._pos + size
                self._state = self.DATA
            elif self._state == self.DATA:
                if len(buf) < self._chunk_end + 2:
                    return None
                if buf[self._chunk_end:self._chunk_end + 2] != b"\r\n":
                    raise Refused(BAD_CHUNKS)
                self._pos = self._line_searched = self._chunk_end + 2
                self._state = self.SIZE
            else:
                if len(buf) - self._pos < 2:
                    return None
                if buf[self._pos:self._pos + 2] == b"\r\n":
                    return self._pos + 2  # no trailers
                end = buf.find(b"\r\n\r\n", self._line_searched)
                if end >= 0:
                    return end + 4
                if len(buf) - self._pos > HEAD_LIMIT_BYTES:
                    raise Refused(HEAD_TOO_LARGE)
                self._line_searched = max(self._pos, len(buf) - 3)
                return None
