# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The common cases of :mod:`vlcurate.pipeline.extract.urls` in C, for ASCII strings.

Each function answers only where the Python rules would give the same answer, and says so
otherwise (``None`` or ``False``): then Python decides. ``tests/extract/test_compiled.py``
holds both equal on random strings of the characters that matter. Built by ``make venv``
(setup.py) without lexbor; without it, every URL takes the Python rules.
"""

from libc.stdlib cimport strtod
from libc.string cimport memcpy


cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object text)
    void *PyUnicode_DATA(object text)
    Py_ssize_t PyUnicode_GET_LENGTH(object text)


cdef int _i
# Per ASCII byte: 1 if it may appear in a host of urls._HOST's first form ([\w.~%!$&'()*+,;=-]).
cdef unsigned char HOST_BYTE[128]
for _i in range(128):
    HOST_BYTE[_i] = chr(_i).isascii() and (chr(_i).isalnum() or chr(_i) in "_.~%!$&'()*+,;=-")


cdef inline bint _host_ok(const unsigned char *s, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    """``urls._HOST.fullmatch(s[start:end])`` for ASCII: a name or ``[v6]``, then ``:digits``."""
    cdef Py_ssize_t i = start, digits
    if i < end and s[i] == 0x5b:  # "["
        i += 1
        while i < end and (s[i] == 0x3a or s[i] == 0x2e or 0x30 <= s[i] <= 0x39
                           or 0x61 <= (s[i] | 0x20) <= 0x66):  # [0-9A-Fa-f:.]
            i += 1
        if i == start + 1 or i >= end or s[i] != 0x5d:
            return False
        i += 1
    else:
        while i < end and HOST_BYTE[s[i]]:
            i += 1
        if i == start:
            return False
    if i == end:
        return True
    if s[i] != 0x3a:  # ":"
        return False
    digits = end - i - 1
    if digits > 5:
        return False
    for i in range(i + 1, end):
        if not 0x30 <= s[i] <= 0x39:
            return False
    return True


cdef inline bint _dot_segment_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """``urls._DOT_SEGMENT.match(s, i)``: ``/.`` or ``/..``, then the segment's end."""
    if i + 1 >= n or s[i] != 0x2f or s[i + 1] != 0x2e:
        return False
    i += 2
    if i < n and s[i] == 0x2e:
        i += 1
    return i == n or s[i] == 0x2f or s[i] == 0x3f or s[i] == 0x23  # the end, "/", "?", "#"


def plain_url(str ref, Py_ssize_t max_length):
    """``ref`` when ``urls.resolve`` would return it as it is by its first rule (an absolute
    http(s) URL with a plain host, nothing for urljoin to do, at most ``max_length``), else
    ``None``: then Python decides. ASCII only; ``tests/extract`` holds the two equal."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(ref), i, host_start, host_end
    cdef const unsigned char *s
    cdef unsigned char c
    if n > max_length or n < 8 or not PyUnicode_IS_ASCII(ref):
        return None
    s = <const unsigned char *> PyUnicode_DATA(ref)
    if (s[0] | 0x20) != 0x68 or (s[1] | 0x20) != 0x74 or (s[2] | 0x20) != 0x74 or (s[3] | 0x20) != 0x70:
        return None
    i = 4
    if (s[4] | 0x20) == 0x73:
        i = 5
    if i + 3 > n or s[i] != 0x3a or s[i + 1] != 0x2f or s[i + 2] != 0x2f:
        return None
    host_start = i + 3
    host_end = -1
    for i in range(n):
        c = s[i]
        if c <= 0x20 or c == 0x7f or c == 0x5c:
            return None
        if c == 0x2f:
            if host_end < 0 and i >= host_start:
                host_end = i
            if _dot_segment_at(s, i, n):
                return None
        elif (c == 0x3f or c == 0x23) and host_end < 0 and i >= host_start:
            host_end = i
    if host_end < 0:
        host_end = n
    return ref if _host_ok(s, host_start, host_end) else None


cdef inline bint _srcset_space(unsigned char c) noexcept nogil:
    """``str.isspace`` for ASCII: what ``\\s`` and ``strip()`` take."""
    return c == 0x20 or 0x09 <= c <= 0x0d or 0x1c <= c <= 0x1f


cdef inline bint _plain_number(const unsigned char *s, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    """``s[start:end]`` is digits with at most one ``.`` and at least one digit: a number that
    ``float()`` and ``strtod`` read alike."""
    cdef Py_ssize_t i, digits = 0, dots = 0
    for i in range(start, end):
        if 0x30 <= s[i] <= 0x39:
            digits += 1
        elif s[i] == 0x2e:
            dots += 1
        else:
            return False
    return digits > 0 and dots <= 1


def srcset_best(str srcset):
    """``urls.parse_srcset`` for an ASCII srcset whose descriptors are plain numbers: the
    largest candidate's URL (or ``None``); ``False`` where Python must decide."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(srcset), i = 0, j, k, url_end, d0, d1
    cdef const unsigned char *s
    cdef double best_w = -1.0, best_x = -1.0, value
    cdef Py_ssize_t best_start = -1, best_end = -1
    cdef char number[32]
    cdef unsigned char last
    if not PyUnicode_IS_ASCII(srcset):
        return False
    s = <const unsigned char *> PyUnicode_DATA(srcset)
    while True:
        while i < n and (_srcset_space(s[i]) or s[i] == 0x2c):
            i += 1
        if i >= n:
            break
        j = i
        while j < n and not _srcset_space(s[j]):
            j += 1
        if s[j - 1] == 0x2c:  # a URL ending in commas: no descriptor
            url_end = j
            while s[url_end - 1] == 0x2c:
                url_end -= 1
            d0 = d1 = j
            k = j
        else:
            url_end = j
            k = j
            while k < n and s[k] != 0x2c:
                k += 1
            d0, d1 = j, k
            while d0 < d1 and _srcset_space(s[d0]):
                d0 += 1
            while d1 > d0 and _srcset_space(s[d1 - 1]):
                d1 -= 1
        last = s[d1 - 1] | 0x20 if d1 > d0 else 0
        if last == 0x77 or (last == 0x78 and best_w < 0):  # "w", or "x" while no "w" yet
            if not _plain_number(s, d0, d1 - 1) or d1 - 1 - d0 >= 31:
                return False
            memcpy(number, s + d0, d1 - 1 - d0)
            number[d1 - 1 - d0] = 0
            value = strtod(number, NULL)
            if last == 0x77 and value > best_w:
                best_w, best_start, best_end = value, i, url_end
            elif last == 0x78 and value > best_x:
                best_x, best_start, best_end = value, i, url_end
        elif last != 0x77 and best_w < 0 and 1.0 > best_x:  # no descriptor, or another kind: 1x
            best_x, best_start, best_end = 1.0, i, url_end
        i = k
    return None if best_start < 0 else srcset[best_start:best_end]


cdef inline bint _unsafe(unsigned char c) noexcept nogil:
    """``urls._UNSAFE``: controls, space, DEL and backslash."""
    return c <= 0x20 or c == 0x7f or c == 0x5c


def join_simple(str base, str ref, Py_ssize_t max_length):
    """``urls.resolve(base, ref)`` for a relative ``ref`` of the forms ``urls._join_simple``
    takes (``//host/p``, ``/p``, ``p``), ASCII only; ``None`` where Python must decide (every
    other form, and every answer that is a reason rather than a URL)."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(ref), m = PyUnicode_GET_LENGTH(base)
    cdef Py_ssize_t i, first_slash = -1, cut, scheme_end = -1, path_start = -1, last_slash = -1
    cdef const unsigned char *r
    cdef const unsigned char *b
    cdef unsigned char c
    cdef str url
    if n == 0 or n > max_length or not PyUnicode_IS_ASCII(ref) or not PyUnicode_IS_ASCII(base):
        return None
    r = <const unsigned char *> PyUnicode_DATA(ref)
    b = <const unsigned char *> PyUnicode_DATA(base)
    if r[0] == 0x3f or r[0] == 0x23 or r[0] == 0x2e:  # "?", "#", "."
        return None
    for i in range(n):
        c = r[i]
        if _unsafe(c) or _dot_segment_at(r, i, n):
            return None
        if c == 0x3a and (i < 11 or first_slash < 0):  # ":" near the start: a scheme, maybe
            return None
        if c == 0x2f and first_slash < 0:
            first_slash = i
    cut = m  # the base without its query and fragment
    for i in range(m):
        if b[i] == 0x3f or b[i] == 0x23:
            cut = i
            break
    for i in range(cut - 2):
        if b[i] == 0x3a and b[i + 1] == 0x2f and b[i + 2] == 0x2f:
            scheme_end = i
            break
    if scheme_end < 0:
        return None
    if n >= 2 and r[1] == 0x2f and r[0] == 0x2f:  # "//host/p"
        i = 2
        while i < n and r[i] != 0x2f and r[i] != 0x3f and r[i] != 0x23:
            i += 1
        if not _host_ok(r, 2, i):
            return None
        url = base[:scheme_end] + ":" + ref
    else:
        for i in range(scheme_end + 3, cut):
            if b[i] == 0x2f:
                path_start = i
                break
        if path_start < 0:
            url = base[:cut] + ref if r[0] == 0x2f else base[:cut] + "/" + ref
        else:
            for i in range(path_start, cut):
                if _unsafe(b[i]) or _dot_segment_at(b, i, cut):
                    return None
                if b[i] == 0x2f:
                    last_slash = i
            url = base[:path_start] + ref if r[0] == 0x2f else base[: last_slash + 1] + ref
    return url if PyUnicode_GET_LENGTH(url) <= max_length else None


def resolve_fast(str base, str ref, Py_ssize_t max_length):
    """``urls.resolve(base, ref)``'s URL where :func:`plain_url` or :func:`join_simple`
    answers; ``None`` where Python must decide."""
    url = plain_url(ref, max_length)
    return join_simple(base, ref, max_length) if url is None else url
