# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The extract stage's compiled document pass: one lexbor parse, then one plain walk over its
node structures (no selector engine, no tree edits).

``ParsedPage(html)`` parses UTF-8 bytes. ``.head()`` walks the tree once for the page's ``<html
lang>``, first ``<title>`` text, first ``<base href>`` and every ``<img>`` (its URL and size
attributes, and the ``srcset`` of each ``<source>`` under a ``<picture>`` parent), in page order;
on the way, inside ``<body>``, it records the document's steps in a C array: text runs, block
ends, images (boilerplate subtrees skipped, inline elements see-through). Python then resolves
the URLs (:mod:`vlcurate.pipeline.extract.urls`) and calls ``.document(resolved)``, which
replays the steps: adjacent text merged into blocks, control characters dropped, whitespace
collapsed as ``str.split`` does, and each resolved image a node in place. The result equals the
Python path of :mod:`vlcurate.pipeline.extract.page` node for node (``tests/extract``).
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memcpy


cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void *op)



cdef extern from "lexbor/html/html.h" nogil:
    ctypedef unsigned char lxb_char_t
    ctypedef unsigned int lxb_status_t

    ctypedef struct lexbor_str_t:
        lxb_char_t *data
        size_t length

    ctypedef enum lxb_dom_node_type_t:
        LXB_DOM_NODE_TYPE_ELEMENT
        LXB_DOM_NODE_TYPE_TEXT

    ctypedef struct lxb_dom_node_t:
        uintptr_t local_name
        lxb_dom_node_t *next
        lxb_dom_node_t *parent
        lxb_dom_node_t *first_child
        lxb_dom_node_type_t type

    ctypedef struct lxb_dom_attr_t:
        lexbor_str_t *value
        lxb_dom_attr_t *next

    ctypedef struct lxb_dom_element_t:
        lxb_dom_node_t node
        lxb_dom_attr_t *first_attr

    ctypedef struct lxb_dom_character_data_t

    ctypedef struct lxb_dom_document_t:
        lxb_dom_node_t node

    ctypedef struct lxb_html_document_t:
        lxb_dom_document_t dom_document

    lxb_html_document_t *lxb_html_document_create()
    lxb_html_document_t *lxb_html_document_destroy(lxb_html_document_t *document)
    lxb_status_t lxb_html_document_parse(
        lxb_html_document_t *document, const lxb_char_t *html, size_t size
    )
    void *lxb_html_document_body_element(lxb_html_document_t *document)
    lxb_dom_node_t *lxb_dom_document_root(lxb_dom_document_t *document)
    const lxb_char_t *lxb_dom_attr_qualified_name(lxb_dom_attr_t *attr, size_t *len)

    enum: LXB_STATUS_OK
    enum:
        LXB_TAG__LAST_ENTRY
        LXB_TAG_HTML
        LXB_TAG_BODY
        LXB_TAG_TITLE
        LXB_TAG_BASE
        LXB_TAG_IMG
        LXB_TAG_PICTURE
        LXB_TAG_SOURCE
        # boilerplate
        LXB_TAG_SCRIPT
        LXB_TAG_STYLE
        LXB_TAG_NOSCRIPT
        LXB_TAG_TEMPLATE
        LXB_TAG_NAV
        LXB_TAG_HEADER
        LXB_TAG_FOOTER
        LXB_TAG_FORM
        LXB_TAG_ASIDE
        LXB_TAG_IFRAME
        LXB_TAG_SVG
        LXB_TAG_MATH
        LXB_TAG_CANVAS
        LXB_TAG_BUTTON
        LXB_TAG_SELECT
        LXB_TAG_INPUT
        LXB_TAG_TEXTAREA
        LXB_TAG_LABEL
        LXB_TAG_OBJECT
        LXB_TAG_EMBED
        LXB_TAG_MENU
        LXB_TAG_DIALOG
        LXB_TAG_VIDEO
        LXB_TAG_AUDIO
        LXB_TAG_MAP
        # inline
        LXB_TAG_A
        LXB_TAG_ABBR
        LXB_TAG_ACRONYM
        LXB_TAG_B
        LXB_TAG_BDI
        LXB_TAG_BDO
        LXB_TAG_BIG
        LXB_TAG_CITE
        LXB_TAG_CODE
        LXB_TAG_DATA
        LXB_TAG_DEL
        LXB_TAG_DFN
        LXB_TAG_EM
        LXB_TAG_FONT
        LXB_TAG_I
        LXB_TAG_INS
        LXB_TAG_KBD
        LXB_TAG_MARK
        LXB_TAG_NOBR
        LXB_TAG_Q
        LXB_TAG_S
        LXB_TAG_SAMP
        LXB_TAG_SMALL
        LXB_TAG_SPAN
        LXB_TAG_STRIKE
        LXB_TAG_STRONG
        LXB_TAG_SUB
        LXB_TAG_SUP
        LXB_TAG_TIME
        LXB_TAG_TT
        LXB_TAG_U
        LXB_TAG_VAR
        LXB_TAG_WBR


cdef extern from "lexbor/dom/interfaces/character_data.h" nogil:
    ctypedef struct lxb_dom_character_data_t:
        lxb_dom_node_t node
        lexbor_str_t data


# The same lists as page.BOILERPLATE_TAGS and page.INLINE_TAGS (a test holds them equal).
BOILERPLATE = (
    "script style noscript template nav header footer form aside iframe svg math canvas button "
    "select input textarea label object embed menu dialog video audio map"
).split()
INLINE = (
    "a abbr acronym b bdi bdo big cite code data del dfn em font i ins kbd mark nobr q s samp "
    "small span strike strong sub sup time tt u var wbr picture"
).split()
# The <img> attributes that urls.image_url and page._pairs read.
IMAGE_ATTRIBUTES = (
    "src srcset alt width height data-srcset data-lazy-srcset data-src data-original "
    "data-lazy-src data-lazy data-url data-original-src data-full-src data-hi-res-src"
).split()

cdef enum Kind:
    PLAIN = 0
    BOILER = 1
    SEE_THROUGH = 2

cdef unsigned char KIND[LXB_TAG__LAST_ENTRY]
cdef uintptr_t _boiler_ids[25]
cdef uintptr_t _inline_ids[34]
_boiler_ids[:] = [
    LXB_TAG_SCRIPT, LXB_TAG_STYLE, LXB_TAG_NOSCRIPT, LXB_TAG_TEMPLATE, LXB_TAG_NAV,
    LXB_TAG_HEADER, LXB_TAG_FOOTER, LXB_TAG_FORM, LXB_TAG_ASIDE, LXB_TAG_IFRAME, LXB_TAG_SVG,
    LXB_TAG_MATH, LXB_TAG_CANVAS, LXB_TAG_BUTTON, LXB_TAG_SELECT, LXB_TAG_INPUT,
    LXB_TAG_TEXTAREA, LXB_TAG_LABEL, LXB_TAG_OBJECT, LXB_TAG_EMBED, LXB_TAG_MENU,
    LXB_TAG_DIALOG, LXB_TAG_VIDEO, LXB_TAG_AUDIO, LXB_TAG_MAP,
]
_inline_ids[:] = [
    LXB_TAG_A, LXB_TAG_ABBR, LXB_TAG_ACRONYM, LXB_TAG_B, LXB_TAG_BDI, LXB_TAG_BDO, LXB_TAG_BIG,
    LXB_TAG_CITE, LXB_TAG_CODE, LXB_TAG_DATA, LXB_TAG_DEL, LXB_TAG_DFN, LXB_TAG_EM,
    LXB_TAG_FONT, LXB_TAG_I, LXB_TAG_INS, LXB_TAG_KBD, LXB_TAG_MARK, LXB_TAG_NOBR, LXB_TAG_Q,
    LXB_TAG_S, LXB_TAG_SAMP, LXB_TAG_SMALL, LXB_TAG_SPAN, LXB_TAG_STRIKE, LXB_TAG_STRONG,
    LXB_TAG_SUB, LXB_TAG_SUP, LXB_TAG_TIME, LXB_TAG_TT, LXB_TAG_U, LXB_TAG_VAR, LXB_TAG_WBR,
    LXB_TAG_PICTURE,
]
cdef int _i
for _i in range(LXB_TAG__LAST_ENTRY):
    KIND[_i] = PLAIN
for _i in range(len(BOILERPLATE)):
    KIND[_boiler_ids[_i]] = BOILER
for _i in range(len(INLINE)):
    KIND[_inline_ids[_i]] = SEE_THROUGH

cdef list _ATTR_NAMES = [name.encode() for name in IMAGE_ATTRIBUTES]
cdef list _ATTR_KEYS = list(IMAGE_ATTRIBUTES)


class Refused(Exception):
    """The compiled pass declines a page; ``args[0]`` is the reason (counted by the caller)."""


cdef inline unsigned char _kind(lxb_dom_node_t *node) noexcept nogil:
    if node.local_name < LXB_TAG__LAST_ENTRY:
        return KIND[node.local_name]
    return PLAIN


cdef inline lxb_dom_node_t *_next_in(lxb_dom_node_t *node, lxb_dom_node_t *top) noexcept nogil:
    """The node after ``node``'s subtree in a pre-order walk of ``top``, or NULL."""
    while node != top:
        if node.next != NULL:
            return node.next
        node = node.parent
    return NULL


cdef object _text_of(lxb_dom_node_t *top):
    """Every text node under ``top`` joined, as selectolax's ``node.text()`` does."""
    cdef bytearray out = bytearray()
    cdef lxb_dom_node_t *node = top.first_child
    cdef lxb_dom_character_data_t *chars
    while node != NULL:
        if node.type == LXB_DOM_NODE_TYPE_TEXT:
            chars = <lxb_dom_character_data_t *> node
            if chars.data.data != NULL:
                out += chars.data.data[: chars.data.length]
        if node.first_child != NULL:
            node = node.first_child
        else:
            node = _next_in(node, top)
    return PyUnicode_DecodeUTF8(out, len(out), "replace")


cdef object _attr_value(lxb_dom_attr_t *attr):
    if attr.value == NULL or attr.value.data == NULL:
        return None
    return PyUnicode_DecodeUTF8(<char *> attr.value.data, attr.value.length, "replace")


cdef object _attribute(lxb_dom_node_t *node, bytes name):
    """An element's attribute by name: ``None`` when valueless, ``False`` when absent."""
    cdef lxb_dom_attr_t *attr = (<lxb_dom_element_t *> node).first_attr
    cdef size_t length
    cdef const lxb_char_t *qualified
    while attr != NULL:
        qualified = lxb_dom_attr_qualified_name(attr, &length)
        if <Py_ssize_t> length == len(name) and memcmp(qualified, <char *> name, length) == 0:
            return _attr_value(attr)
        attr = attr.next
    return False


cdef dict _image_attributes(lxb_dom_node_t *node):
    """The ``IMAGE_ATTRIBUTES`` an ``<img>`` has (valueless ones as ``None``)."""
    cdef dict found = {}
    cdef lxb_dom_attr_t *attr = (<lxb_dom_element_t *> node).first_attr
    cdef size_t length
    cdef const lxb_char_t *qualified
    cdef bytes name
    cdef Py_ssize_t k
    while attr != NULL:
        qualified = lxb_dom_attr_qualified_name(attr, &length)
        if 3 <= length <= 16:
            for k in range(len(_ATTR_NAMES)):
                name = <bytes> _ATTR_NAMES[k]
                if <Py_ssize_t> length == PyBytes_GET_SIZE(name) and memcmp(
                    qualified, PyBytes_AS_STRING(name), length
                ) == 0:
                    found[_ATTR_KEYS[k]] = _attr_value(attr)
                    break
        attr = attr.next
    return found


cdef list _picture_sources(lxb_dom_node_t *picture):
    """The ``srcset`` of every ``<source>`` under a ``<picture>``, in page order."""
    cdef list out = []
    cdef lxb_dom_node_t *node = picture.first_child
    cdef object value
    while node != NULL:
        if node.type == LXB_DOM_NODE_TYPE_ELEMENT and node.local_name == LXB_TAG_SOURCE:
            value = _attribute(node, b"srcset")
            out.append(value or "")
        if node.first_child != NULL:
            node = node.first_child
        else:
            node = _next_in(node, picture)
    return out


# --- text blocks ---------------------------------------------------------------------------


cdef struct Buffer:
    char *data
    size_t length
    size_t capacity


cdef int _grow(Buffer *buf, size_t extra) except -1 nogil:
    cdef size_t want = buf.length + extra
    cdef char *data
    if want <= buf.capacity:
        return 0
    want = want * 2 if want > 4096 else 8192
    data = <char *> realloc(buf.data, want)
    if data == NULL:
        with gil:
            raise MemoryError()
    buf.data, buf.capacity = data, want
    return 0


cdef inline int _space_at(const unsigned char *s, size_t i, size_t n) noexcept nogil:
    """Length of the ``str.split`` whitespace character at ``s[i]`` (0 if none), among the
    characters left after control characters are dropped."""
    cdef unsigned char c = s[i]
    if c == 0x20 or c == 0x09 or c == 0x0a or c == 0x0d:
        return 1
    if c < 0xc2 or c > 0xe3:
        return 0
    if c == 0xc2:
        return 2 if i + 1 < n and (s[i + 1] == 0x85 or s[i + 1] == 0xa0) else 0
    if i + 2 >= n:
        return 0
    if c == 0xe1:
        return 3 if s[i + 1] == 0x9a and s[i + 2] == 0x80 else 0
    if c == 0xe2:
        if s[i + 1] == 0x80:
            return 3 if s[i + 2] <= 0x8a or s[i + 2] in (0xa8, 0xa9, 0xaf) else 0
        return 3 if s[i + 1] == 0x81 and s[i + 2] == 0x9f else 0
    if c == 0xe3:
        return 3 if s[i + 1] == 0x80 and s[i + 2] == 0x80 else 0
    return 0


cdef inline int _control_at(const unsigned char *s, size_t i, size_t n) noexcept nogil:
    """Length of a dropped character at ``s[i]``: C0 controls bar tab/LF/CR, DEL, U+FFFD."""
    cdef unsigned char c = s[i]
    if c < 0x20:
        return 0 if c == 0x09 or c == 0x0a or c == 0x0d else 1
    if c == 0x7f:
        return 1
    if c == 0xef and i + 2 < n and s[i + 1] == 0xbf and s[i + 2] == 0xbd:
        return 3
    return 0


# Per leading byte: 0 copy, 1 ASCII whitespace, 2 dropped control, 3 look closer.
cdef unsigned char BYTE_CLASS[256]
for _i in range(256):
    BYTE_CLASS[_i] = 0
for _i in range(0x20):
    BYTE_CLASS[_i] = 2
for _i in (0x09, 0x0a, 0x0d, 0x20):
    BYTE_CLASS[_i] = 1
BYTE_CLASS[0x7f] = 2
for _i in (0xc2, 0xe1, 0xe2, 0xe3, 0xef):
    BYTE_CLASS[_i] = 3


cdef size_t clean_into(const unsigned char *s, size_t n, char *out) noexcept nogil:
    """``" ".join(text.translate(controls).split())`` on UTF-8 bytes; returns the length."""
    cdef size_t i = 0, o = 0
    cdef int k
    cdef unsigned char kind
    cdef bint pending = False
    while i < n:
        kind = BYTE_CLASS[s[i]]
        if kind == 0:  # a run of bytes to copy (a multi-byte character's bytes among them)
            if pending:
                out[o] = 32
                o += 1
                pending = False
            out[o] = s[i]
            o += 1
            i += 1
            while i < n and BYTE_CLASS[s[i]] == 0:  # byte by byte: runs are words, and a
                out[o] = s[i]  # memcpy call per word cost more than the copy
                o += 1
                i += 1
            continue
        if kind == 1:  # indentation is long runs of these
            pending = o > 0
            i += 1
            while i < n and BYTE_CLASS[s[i]] == 1:
                i += 1
            continue
        if kind == 2:
            i += 1
            continue
        k = _control_at(s, i, n)
        if k:
            i += k
            continue
        k = _space_at(s, i, n)
        if k:
            pending = o > 0
            i += k
            continue
        if pending:  # a lead byte that starts neither a control nor a space: copy it
            out[o] = 32
            o += 1
            pending = False
        out[o] = s[i]
        o += 1
        i += 1
    return o


def clean(str text):
    """The C whitespace and control clean-up, for tests against page.clean_text."""
    cdef bytes raw = text.encode("utf-8", "surrogatepass")
    cdef Buffer buf = Buffer(NULL, 0, 0)
    cdef size_t n
    try:
        _grow(&buf, len(raw) + 1)
        n = clean_into(<unsigned char *> PyBytes_AS_STRING(raw), len(raw), buf.data)
        return PyUnicode_DecodeUTF8(buf.data, n, "surrogatepass")
    finally:
        free(buf.data)


cdef class _Blocks:
    """Text runs merged into blocks, each cleaned and appended as a ``("text", ...)`` node."""

    cdef Buffer run
    cdef Buffer scratch
    cdef list nodes

    def __cinit__(self):
        self.nodes = []

    def __dealloc__(self):
        free(self.run.data)
        free(self.scratch.data)

    cdef int add(self, lexbor_str_t *data) except -1:
        if data.data == NULL or data.length == 0:
            return 0
        _grow(&self.run, data.length)
        memcpy(self.run.data + self.run.length, data.data, data.length)
        self.run.length += data.length
        return 0

    cdef int end(self) except -1:
        cdef size_t n
        if self.run.length == 0:
            return 0
        _grow(&self.scratch, self.run.length)
        n = clean_into(<unsigned char *> self.run.data, self.run.length, self.scratch.data)
        self.run.length = 0
        if n:
            _append_node(
                self.nodes, ("text", PyUnicode_DecodeUTF8(self.scratch.data, n, "replace"), None, None)
            )
        return 0


cdef inline int _append_node(list nodes, tuple node) except -1:
    """Append a node tuple, untracked by the cyclic collector: it holds only strings and
    ``None``, so it can be in no cycle (the collector would untrack it itself, but only after
    walking it once; the stage keeps every page's nodes until the next row group)."""
    PyObject_GC_UnTrack(<void *> node)
    return PyList_Append(nodes, node)


# --- the page ------------------------------------------------------------------------------


cdef enum Step:
    TEXT = 0  # a text node of the document: its characters join the current block
    END = 1  # the current block ends (a plain element starts or ends, a comment, ...)
    IMAGE = 2  # the image of head()'s list at ``index``: a node when it has a URL


cdef struct Event:
    Step step
    Py_ssize_t index
    lexbor_str_t *text


@cython.final
cdef class ParsedPage:
    """One page parsed by lexbor; freed with the object.

    :meth:`head` walks the tree once; inside ``<body>`` and outside boilerplate it also
    records the document's steps (text runs, block ends, images) in a C array, which
    :meth:`document` replays once the image URLs are resolved: the DOM is walked once.
    """

    cdef lxb_html_document_t *doc
    cdef bytes html
    cdef Event *events
    cdef Py_ssize_t n_events, capacity

    def __cinit__(self, bytes html):
        self.doc = lxb_html_document_create()
        if self.doc == NULL:
            raise Refused("document_create_failed")
        self.html = html
        if lxb_html_document_parse(
            self.doc, <lxb_char_t *> PyBytes_AS_STRING(html), PyBytes_GET_SIZE(html)
        ) != LXB_STATUS_OK:
            raise Refused("parse_failed")

    def __dealloc__(self):
        free(self.events)
        if self.doc != NULL:
            lxb_html_document_destroy(self.doc)

    cdef inline int _record(self, Step step, Py_ssize_t index, lexbor_str_t *text) except -1:
        if self.n_events == self.capacity:
            self._more_events()
        self.events[self.n_events] = Event(step, index, text)
        self.n_events += 1
        return 0

    cdef int _more_events(self) except -1:
        cdef Event *grown
        self.capacity = self.capacity * 2 if self.capacity else 256
        grown = <Event *> realloc(self.events, self.capacity * sizeof(Event))
        if grown == NULL:
            raise MemoryError()
        self.events = grown
        return 0

    def head(self):
        """``(lang, title, base_href, images)``: ``<html lang>`` and the first ``<title>``'s
        text, raw, ``None`` when absent; the first ``<base href>``; and per ``<img>`` in page
        order ``(attributes, picture_srcsets)``. Records the document's steps."""
        cdef lxb_dom_node_t *top = &self.doc.dom_document.node
        cdef lxb_dom_node_t *node = top.first_child
        cdef lxb_dom_node_t *root = lxb_dom_document_root(&self.doc.dom_document)
        cdef lxb_dom_node_t *body = <lxb_dom_node_t *> lxb_html_document_body_element(self.doc)
        cdef lxb_dom_node_t *boiler = NULL  # the boilerplate element the walk is inside
        cdef object lang = None, title = None, base = None, href
        cdef bint title_seen = False, base_seen = False, in_body = False, recording
        cdef list images = []
        cdef list extra
        cdef unsigned char kind
        if root != NULL and root.type == LXB_DOM_NODE_TYPE_ELEMENT and root.local_name == LXB_TAG_HTML:
            lang = _attribute(root, b"lang") or None
        self.n_events = 0
        while node != NULL:
            if node == body:
                in_body = True
            recording = in_body and boiler == NULL and node != body
            if node.type == LXB_DOM_NODE_TYPE_ELEMENT:
                kind = _kind(node)
                if node.local_name == LXB_TAG_IMG:
                    extra = None
                    if node.parent != NULL and node.parent.local_name == LXB_TAG_PICTURE:
                        extra = _picture_sources(node.parent)
                    if recording and kind != BOILER:
                        self._record(IMAGE, len(images), NULL)
                    images.append((_image_attributes(node), extra))
                elif node.local_name == LXB_TAG_TITLE and not title_seen:
                    title_seen = True
                    title = _text_of(node)
                elif node.local_name == LXB_TAG_BASE and not base_seen:
                    href = _attribute(node, b"href")
                    if href is not False:
                        base_seen = True
                        base = href
                if recording:
                    if kind == BOILER:
                        boiler = node  # its images are pairs; its text is not the document's
                    elif kind == PLAIN and node.local_name != LXB_TAG_IMG:
                        self._record(END, 0, NULL)
            elif recording:
                if node.type == LXB_DOM_NODE_TYPE_TEXT:
                    self._record(TEXT, 0, &(<lxb_dom_character_data_t *> node).data)
                else:  # a comment or other node: it parts the text
                    self._record(END, 0, NULL)
            if node.first_child != NULL:
                node = node.first_child
                continue
            while node != NULL:  # leave the node, and its parents while it was their last child
                if node == boiler:
                    boiler = NULL
                elif node == body:
                    in_body = False
                elif (in_body and boiler == NULL and node.type == LXB_DOM_NODE_TYPE_ELEMENT
                      and _kind(node) == PLAIN and node.local_name != LXB_TAG_IMG):
                    self._record(END, 0, NULL)  # a plain element's end parts the text too
                if node.next != NULL:
                    node = node.next
                    break
                node = node.parent
                if node == top:
                    node = NULL
        return lang, title, base, images

    def document(self, list resolved):
        """The body's nodes in page order, from the steps :meth:`head` recorded.
        ``resolved[i]`` is ``(url, alt)`` for the i-th ``<img>`` of :meth:`head`, or ``None``
        for one without a usable URL (it is skipped and the text around it joins, as the
        Python path's ``decompose`` does)."""
        cdef _Blocks blocks = _Blocks()
        cdef Py_ssize_t i
        cdef Event *event
        cdef object info, url, alt
        for i in range(self.n_events):
            event = &self.events[i]
            if event.step == TEXT:
                blocks.add(event.text)
            elif event.step == END:
                blocks.end()
            else:
                info = resolved[event.index]
                if info is not None:
                    blocks.end()
                    url, alt = info
                    if type(url) is str and type(alt) is str:
                        _append_node(blocks.nodes, ("image", None, url, alt))
                    else:
                        blocks.nodes.append(("image", None, url, alt))
        blocks.end()
        return blocks.nodes


# --- pairs ---------------------------------------------------------------------------------

try:  # page.md5's choice: CPython's own MD5, else hashlib's (the same digests)
    from _md5 import md5 as _md5
except ImportError:
    from hashlib import md5 as _md5

from vlcurate.pipeline.extract.urls import LAZY_SRC_ATTRS, LAZY_SRCSET_ATTRS, _urls, image_url
from vlcurate.schemas.extract import IMAGE_NO_ALT

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object text)
    void *PyUnicode_DATA(object text)
    Py_ssize_t PyUnicode_GET_LENGTH(object text)
    const char *PyUnicode_AsUTF8AndSize(object text, Py_ssize_t *size) except NULL

# urls.image_url's candidates, in its order: srcsets, then single URLs (then <picture> srcsets).
cdef tuple _SRCSET_ATTRS = ("srcset", *LAZY_SRCSET_ATTRS)
cdef tuple _SRC_ATTRS = (*LAZY_SRC_ATTRS, "src")


cdef inline bint _strip_space(unsigned char c) noexcept nogil:
    """ASCII characters ``str.strip()`` removes."""
    return c == 0x20 or 0x09 <= c <= 0x0d or 0x1c <= c <= 0x1f


def dimension(str value):
    """``page._dimension`` for ASCII values; ``False`` for others (then Python decides)."""
    cdef const unsigned char *s
    cdef Py_ssize_t i = 0, j, k
    cdef long number = 0
    if not PyUnicode_IS_ASCII(value):
        return False
    s = <const unsigned char *> PyUnicode_DATA(value)
    j = PyUnicode_GET_LENGTH(value)
    while i < j and _strip_space(s[i]):
        i += 1
    while j > i and _strip_space(s[j - 1]):
        j -= 1
    if j - i >= 2 and (s[j - 2] | 0x20) == 0x70 and (s[j - 1] | 0x20) == 0x78:  # "px", any case
        j -= 2
        while j > i and _strip_space(s[j - 1]):
            j -= 1
    if j == i or j - i > 9:
        return None
    for k in range(i, j):
        if not 0x30 <= s[k] <= 0x39:
            return None
        number = number * 10 + (s[k] - 0x30)
    return number if number > 0 else None


cdef object _size(object value, object dimension_py):
    if not value:
        return None
    found = dimension(value)
    return dimension_py(value) if found is False else found


cdef str _clean_alt(str alt, Py_ssize_t max_chars):
    """``page.clean_text(alt, max_chars)`` by :func:`clean_into`."""
    cdef Py_ssize_t n
    cdef const char *raw = PyUnicode_AsUTF8AndSize(alt, &n)  # no copy for ASCII text
    cdef Buffer buf = Buffer(NULL, 0, 0)
    cdef size_t length
    cdef str text
    try:
        _grow(&buf, n + 1)
        length = clean_into(<const unsigned char *> raw, n, buf.data)
        if PyUnicode_IS_ASCII(alt) and max_chars and <Py_ssize_t> length > max_chars:
            length = max_chars  # one byte per character
        text = PyUnicode_DecodeUTF8(buf.data, length, "strict")
    finally:
        free(buf.data)
    return text[:max_chars] if max_chars and len(text) > max_chars else text


cdef object _NEXT = object()  # a srcset without a candidate: on to the next attribute


cdef object _srcset_url(object value, str base, Py_ssize_t max_url):
    """The resolved URL of a srcset's best candidate, ``None`` where Python must decide, or
    ``_NEXT`` when it has no candidate."""
    best = _urls.srcset_best(value)
    if best is False:
        return None
    return _urls.resolve_fast(base, best, max_url) if best else _NEXT


cdef object _fast_url(dict attrs, object extra, str base, Py_ssize_t max_url):
    """``urls.image_url``'s URL where its first candidate resolves in C (``_urls``); ``None``
    where Python must decide (a candidate C cannot read or resolve, or no candidate)."""
    cdef str name
    for name in _SRCSET_ATTRS:
        value = attrs.get(name)
        if value:
            url = _srcset_url(value, base, max_url)
            if url is not _NEXT:
                return url
    for name in _SRC_ATTRS:
        value = attrs.get(name)
        if value:
            return _urls.resolve_fast(base, value, max_url)
    for value in extra or ():
        if value:
            url = _srcset_url(value, base, max_url)
            if url is not _NEXT:
                return url
    return None


cdef object _NOT_PLAIN = object()


cdef object _plain_src(dict attrs):
    """The ``src`` of an image whose other attributes are only ``alt``, ``width`` and
    ``height`` (``None`` when valueless): its one URL candidate. ``_NOT_PLAIN`` otherwise, or
    when it has no ``src``."""
    cdef Py_ssize_t plain = 0
    src = attrs.get("src", _NOT_PLAIN)
    plain += src is not _NOT_PLAIN
    plain += "alt" in attrs
    plain += "width" in attrs
    plain += "height" in attrs
    return src if plain == len(attrs) else _NOT_PLAIN


cdef str _uid(str alt, str url):
    """``page.pair_uid``: md5 of the caption's and the URL's UTF-8 (cached on the strings,
    where pyarrow reads it again), without building ``alt + url`` and encoding it."""
    cdef Py_ssize_t na, nb
    cdef const char *a
    cdef const char *b
    cdef bytes data
    try:
        a = PyUnicode_AsUTF8AndSize(alt, &na)
        b = PyUnicode_AsUTF8AndSize(url, &nb)
    except UnicodeEncodeError:  # lone surrogates: encoded as page.pair_uid encodes them
        return _md5((alt + url).encode("utf-8", "surrogatepass")).hexdigest()
    data = PyBytes_FromStringAndSize(NULL, na + nb)
    memcpy(PyBytes_AS_STRING(data), a, na)
    memcpy(PyBytes_AS_STRING(data) + na, b, nb)
    return _md5(data).hexdigest()


def image_pairs(
    list images, str base, Py_ssize_t max_alt, Py_ssize_t max_url, dimension_py, tuple row=None
):
    """``page._pairs`` for the compiled pass: the same ``(pairs, drops, resolved)``.

    An image whose URL :func:`_fast_url` cannot settle goes to ``urls.image_url``, a size in
    non-ASCII characters to ``dimension_py`` (``page._dimension``). With ``row``, ``(page_url,
    page_lang, source, warc_path, warc_record_id, warc_offset)``, each pair is a whole
    ``PAIR_SCHEMA`` row: one dict built at once, not a dict and an update.
    """
    cdef list pairs = [], resolved = []
    cdef Py_ssize_t position = -1
    cdef dict attrs
    cdef str alt
    cdef dict drops = {}
    cdef object page_url = None, lang = None, source = None, path = None, rid = None, offset = None
    if row is not None:
        page_url, lang, source, path, rid, offset = row
    for attrs, extra in images:
        position += 1
        url = None
        if _urls is not None:
            src = _NOT_PLAIN if extra else _plain_src(attrs)
            if src is _NOT_PLAIN:
                url = _fast_url(attrs, extra, base, max_url)
            elif src:  # the only candidate, as _fast_url would find it
                url = _urls.resolve_fast(base, src, max_url)
        if url is None:
            url, reason = image_url(attrs, base, extra or (), max_url)
            if url is None:
                drops[reason] = drops.get(reason, 0) + 1
                resolved.append(None)
                continue
        value = attrs.get("alt")
        alt = _clean_alt(value, max_alt) if value else ""
        resolved.append((url, alt))
        if not alt:
            drops[IMAGE_NO_ALT] = drops.get(IMAGE_NO_ALT, 0) + 1
            continue
        uid = _uid(alt, url)
        width = _size(attrs.get("width"), dimension_py)
        height = _size(attrs.get("height"), dimension_py)
        if row is None:
            PyList_Append(pairs, {
                "uid": uid, "url": url, "caption": alt, "width": width, "height": height,
                "position": position,
            })
        else:
            PyList_Append(pairs, {
                "uid": uid, "url": url, "caption": alt, "width": width, "height": height,
                "position": position, "page_url": page_url, "page_lang": lang,
                "source": source, "warc_path": path, "warc_record_id": rid, "warc_offset": offset,
            })
    return pairs, drops, resolved
