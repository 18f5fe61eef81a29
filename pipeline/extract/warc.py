"""Reading WARC files with fastwarc, past the damage real crawls contain.

fastwarc stops at the first corrupt gzip member, at garbage between gzip members, and after a
record whose Content-Length runs past the records that follow it. ``WarcRecords`` then looks
for the next record boundary (a gzip member header, or a ``WARC/1.x`` line in an uncompressed
file) after the damage and starts reading again from there, so one bad record costs one
record, not the rest of the file.
"""

from fastwarc.warc import ArchiveIterator

_GZIP_MAGIC = b"\x1f\x8b\x08"
_WARC_LINES = (b"WARC/1.0\r\n", b"WARC/1.1\r\n")
_SCAN_CHUNK = 1 << 20


class WarcRecords:
    """Iterate ``(offset, record)`` over a WARC file, resynchronising after damage.

    ``stream`` is the file, open for reading and seekable. Call :meth:`damaged` with a
    record's offset when its body turns out short: iteration then resumes at the next record
    boundary after that offset. ``resyncs`` counts how often reading had to start again.
    """

    def __init__(self, stream):
        self.stream = stream
        self.resyncs = 0
        self._damaged_at: int | None = None

    def damaged(self, offset: int) -> None:
        self._damaged_at = offset

    def __iter__(self):
        start, last, stream = 0, -1, self.stream
        stream.seek(0)
        gzipped = stream.read(3) == _GZIP_MAGIC
        while True:
            stream.seek(start)
            try:
                for record in ArchiveIterator(
                    stream, parse_http=True, auto_decode="none", quirks_mode=True
                ):
                    # Restarts begin past every record already yielded, so none repeats.
                    # (Records inside one multi-record gzip member share its offset.)
                    last = record.stream_pos
                    yield last, record
                    if self._damaged_at is not None:
                        break
            except Exception:  # a corrupt gzip member or unparsable bytes
                pass
            after = self._damaged_at if self._damaged_at is not None else max(last, start)
            self._damaged_at = None
            nxt = self._next_boundary(stream, after + 1, gzipped)
            if nxt is None:
                return
            self.resyncs += 1
            start = nxt

    def _next_boundary(self, stream, offset: int, gzipped: bool) -> int | None:
        patterns = (_GZIP_MAGIC,) if gzipped else _WARC_LINES
        overlap = 16
        stream.seek(offset)
        while True:
            chunk = stream.read(_SCAN_CHUNK)
            if not chunk:
                return None
            hits = [i for i in (chunk.find(p) for p in patterns) if i >= 0]
            if hits:
                return offset + min(hits)
            if len(chunk) < _SCAN_CHUNK:
                return None
            offset += len(chunk) - overlap
            stream.seek(offset)
