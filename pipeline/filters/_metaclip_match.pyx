# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""MetaCLIP's whole-token substring matching in C: a hash table of token n-grams.

An entry matches a spaced caption where ``" entry "`` is a substring of it. The entry is
stripped, so that substring starts and ends on a space of the caption and spans whole tokens
(the runs between single spaces, empty ones included): the entry matches exactly where its
tokens are consecutive tokens of the caption. So every entry goes into one open-addressing
table under its UTF-8 bytes, and so does every token prefix of a longer entry (flagged, to
know a longer n-gram may follow); each caption token then starts an n-gram that grows one
token at a time while the table holds it. About two lookups a token, against pyahocorasick's
Python tuple per match (tests/filters/test_metaclip_match.py holds both equal).

Keys are found by a 64-bit FNV-1a hash, grown token by token, and confirmed by comparing bytes.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcmp

import numpy as np

cdef uint64_t FNV_OFFSET = 14695981039346656037ULL
cdef uint64_t FNV_PRIME = 1099511628211ULL
cdef int32_t EMPTY = -2  # a slot's value: -2 empty, -1 a prefix only, >= 0 an entry id


cdef inline uint64_t _head(const uint8_t *s, Py_ssize_t n) noexcept nogil:
    cdef uint64_t out = 0
    cdef Py_ssize_t i
    for i in range(min(n, 8)):
        out |= (<uint64_t> s[i]) << (8 * i)
    return out


cdef inline uint64_t _feed(uint64_t h, const uint8_t *s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ s[i]) * FNV_PRIME
    return h


cdef struct Slot:  # 32 bytes: a probe reads one cache line, and the pool only for long keys
    uint64_t hash
    uint64_t head  # the key's first 8 bytes (zero-padded): keys up to 8 bytes need no pool
    int32_t offset  # of the key's bytes in the pool
    int32_t length
    int32_t value  # EMPTY, -1 (a prefix only) or an entry id
    int32_t grows  # 1: a longer key starts with this one and a space


cdef class NgramTable:
    """Entry ids by the entries' bytes, with every token prefix of an entry marked."""

    cdef Slot *slots
    cdef bytes pool
    cdef uint64_t mask
    cdef public Py_ssize_t entries

    def __init__(self, list keys, list ids):
        """``keys[i]`` (UTF-8 bytes, stripped, no NUL) gets id ``ids[i]``; a key met again
        keeps its first id."""
        cdef Py_ssize_t n = len(keys), capacity = 16, total = 0, i, cut
        cdef bytes key
        prefixes = sum([k.count(b" ") for k in keys])
        while capacity < 2 * (n + prefixes):
            capacity *= 2
        self.mask = capacity - 1
        self.slots = <Slot *> PyMem_Malloc(capacity * sizeof(Slot))
        if self.slots == NULL:
            raise MemoryError(f"{capacity} table slots")
        for i in range(capacity):
            self.slots[i].value = EMPTY
            self.slots[i].grows = 0
        self.pool = b"".join(keys)
        if len(self.pool) >= 2**31:
            raise ValueError(f"metadata: {len(self.pool):,} bytes of entries; at most 2 GiB")
        self.entries = 0
        for i in range(n):
            key = keys[i]
            cut = key.find(b" ")
            while cut >= 0:  # "hot dog bun": "hot" and "hot dog" may grow
                self.slots[self._slot(total, cut, -1)].grows = 1
                cut = key.find(b" ", cut + 1)
            self._slot(total, len(key), ids[i])
            total += len(key)

    cdef Py_ssize_t _slot(self, int32_t offset, Py_ssize_t length, int32_t value):
        """Insert pool[offset:offset + length] (if new) and give it ``value`` if it has none."""
        cdef const uint8_t *pool = self.pool
        cdef uint64_t h = _feed(FNV_OFFSET, pool + offset, length)
        cdef Py_ssize_t slot = self._find(h, pool + offset, length)
        cdef Slot *found = &self.slots[slot]
        if found.value == EMPTY:
            found.hash = h
            found.head = _head(pool + offset, length)
            found.offset = offset
            found.length = length
            found.value = -1
        if value >= 0 and found.value == -1:
            found.value = value
            self.entries += 1
        return slot

    def __dealloc__(self):
        PyMem_Free(self.slots)

    cdef inline Py_ssize_t _find(self, uint64_t h, const uint8_t *s, Py_ssize_t n) noexcept:
        """The slot holding ``s[:n]``, or the empty slot where it would go."""
        cdef const uint8_t *pool = self.pool
        cdef Py_ssize_t slot = h & self.mask
        cdef Slot *at = &self.slots[slot]
        while at.value != EMPTY:
            if at.hash == h and at.length == n and at.head == _head(s, n):
                if n <= 8 or memcmp(pool + at.offset + 8, s + 8, n - 8) == 0:
                    return slot
            slot = (slot + 1) & self.mask
            at = &self.slots[slot]
        return slot

    def match(self, bytes text, Py_ssize_t rows, bint separated):
        """(offsets int32 (rows + 1), ids int32): each row's entry ids, sorted, no repeats.

        ``text`` is the spaced captions, each padded with spaces; with ``separated`` a token
        that is a lone NUL ends a row (the batch's separator), else all of it is row 0."""
        cdef const uint8_t *s = text
        cdef Py_ssize_t n = len(text), start = 0, end, grow, slot, row = 0, first = 0, k
        cdef uint64_t h
        cdef int32_t value
        offsets = np.zeros(rows + 1, np.int32)
        cdef int32_t[::1] out_offsets = offsets
        cdef int32_t[::1] out = np.empty(max(16, n // 2), np.int32)
        cdef Py_ssize_t used = 0
        while start <= n:
            end = start
            while end < n and s[end] != 32:
                end += 1
            if separated and end == start + 1 and s[start] == 0:
                if row + 1 >= rows:
                    raise ValueError(f"more than {rows} rows in the text")
                used = _close_row(out, first, used)
                row += 1
                out_offsets[row] = used
                first = used
                start = end + 1
                continue
            if end == start:  # an empty token (padding, doubled spaces) starts no entry
                start += 1
                continue
            h = FNV_OFFSET
            grow = start
            while True:  # the n-grams from this token: grow while the table holds them
                h = _feed(h, s + grow, end - grow)
                slot = self._find(h, s + start, end - start)
                value = self.slots[slot].value
                if value == EMPTY:
                    break
                if value >= 0:
                    if used == out.shape[0]:
                        out = np.concatenate([out, np.empty(out.shape[0], np.int32)])
                    out[used] = value
                    used += 1
                if not self.slots[slot].grows or end >= n:
                    break
                grow = end
                end += 1
                while end < n and s[end] != 32:
                    end += 1
            while start < n and s[start] != 32:
                start += 1
            start += 1
        used = _close_row(out, first, used)
        for k in range(row + 1, rows + 1):
            out_offsets[k] = used
        return offsets, np.asarray(out[:used]).copy()


cdef Py_ssize_t _close_row(int32_t[::1] out, Py_ssize_t first, Py_ssize_t used) noexcept:
    """Sort out[first:used] (a row's ids: a few dozen at most) and drop repeats; the new end."""
    cdef Py_ssize_t i, j, kept
    cdef int32_t v
    for i in range(first + 1, used):
        v = out[i]
        j = i - 1
        while j >= first and out[j] > v:
            out[j + 1] = out[j]
            j -= 1
        out[j + 1] = v
    kept = first
    for i in range(first, used):
        if i == first or out[i] != out[kept - 1]:
            out[kept] = out[i]
            kept += 1
    return kept
