"""A rule-based English sentence splitter for interleaved documents (mmc4's ``text_list``).

Rules, in order:

- Empty or whitespace-only text gives ``[]``; anything that is not a string is read as ``""``.
- A line break ends a sentence: text nodes come from block elements, where a newline marks a
  paragraph, a list item or a heading, never the middle of a sentence. Other runs of whitespace
  become one space.
- ``!`` or ``?`` (with any closing quotes or brackets after it) followed by whitespace ends a
  sentence.
- ``.`` (or ``...``) followed by whitespace ends a sentence only when the next word starts with a
  capital letter, a digit or an opening quote or bracket, and the word before the period is not
  an abbreviation: a title or other short form that is followed by a name or a number
  (capitalised titles such as ``Dr.``, ``St.``, ``No.``, ``Fig.``, ``Jan.``, see :data:`TITLES`;
  ``vs.``, ``cf.``, ``al.``, see :data:`LOWER`), a single
  letter (the initial in ``J. Smith``) or dotted letters (``e.g.``, ``i.e.``, ``U.S.``,
  ``a.m.``). So ``in the U.S. The next`` stays one sentence: a known, accepted miss, cheaper
  than splitting ``the U.S. Army``.
- A period inside a token (``3.14``, ``example.com``, ``v1.2``) is never a boundary, because no
  whitespace follows it.
- A piece longer than ``max_chars`` is cut at its last space within the limit, or hard-cut at
  ``max_chars`` when it has none (a 100 KB run of characters gives 100 pieces of 1,000), so a
  sentence never outgrows CLIP's or a tokenizer's budget by much and the work stays linear.
"""

import re

__all__ = ["ABBREVIATIONS", "LOWER", "TITLES", "split_sentences"]

# Without the final period, compared lower-cased. Only forms that are normally followed by more
# of the same sentence (a name, a number): "etc.", "Inc." and "approx." are not here, as they
# often end one. TITLES count only when capitalised ("Dr.", "Sun.", "No."), so the ordinary
# words among them ("the sun.", "said no.", "a fig.") still end a sentence.
TITLES = frozenset(
    """
    mr mrs ms mx dr prof rev fr sr jr st mt ft gen col lt sgt capt cmdr adm gov pres sen rep
    hon messrs mme mlle no nos vol vols fig figs eq eqs ch sec art para ref refs ed eds dept
    univ jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri
    sat sun
    """.split()
)
LOWER = frozenset("vs v cf al ca pp p".split())  # "vs. Real", "cf. Smith", "et al. Nature"
ABBREVIATIONS = TITLES | LOWER

# A run of terminators, then closing quotes/brackets, then whitespace (the candidate boundary).
_BOUNDARY = re.compile(r"([.!?]+)([\"'\)\]\u2019\u201d\u00bb]*)\s+")
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]?$")  # e.g / i.e / U.S / a.m (final dot removed)
_OPENERS = "\"'([\u2018\u201c\u00ab"


def _is_boundary(text: str, match: re.Match) -> bool:
    marks = match.group(1)
    after = text[match.end() : match.end() + 1]
    if not after:
        return True
    if "!" in marks or "?" in marks:
        return True
    if not (after.isupper() or after.isdigit() or after in _OPENERS):
        return False
    if len(marks) > 1:  # an ellipsis before a capital
        return True
    start = match.start()
    word_start = text.rfind(" ", 0, start) + 1
    word = text[word_start:start].lstrip(_OPENERS)
    if not word:
        return True
    if len(word) == 1 and word.isalpha():  # an initial: "J. Smith"
        return False
    lower = word.lower()
    if lower in LOWER or (lower in TITLES and word[0].isupper()):
        return False
    return not _DOTTED.match(word)


def _split_line(line: str) -> list[str]:
    pieces, start = [], 0
    for match in _BOUNDARY.finditer(line):
        if _is_boundary(line, match):
            end = match.end(2)
            pieces.append(line[start:end])
            start = match.end()
    pieces.append(line[start:])
    return [p.strip() for p in pieces if p.strip()]


def _bound(sentence: str, max_chars: int) -> list[str]:
    out, start, n = [], 0, len(sentence)
    while n - start > max_chars:
        cut = sentence.rfind(" ", start + 1, start + max_chars + 1)
        if cut <= start:  # no space within the limit: hard cut
            out.append(sentence[start : start + max_chars])
            start += max_chars
        else:
            out.append(sentence[start:cut])
            start = cut + 1
    tail = sentence[start:].strip()
    if tail:
        out.append(tail)
    return [p for p in (s.strip() for s in out) if p]


def split_sentences(text: str, max_chars: int = 1000) -> list[str]:
    """Sentences of ``text`` in order, each stripped, non-empty and at most ``max_chars`` long
    (see the module docstring for the rules). Never raises on any string."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    if not isinstance(text, str) or not text.strip():
        return []
    sentences: list[str] = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        for sentence in _split_line(line):
            sentences.extend(_bound(sentence, max_chars))
    return sentences
