"""Records written by the filter stage (``OUTPUT/pairs/``, ``OUTPUT/dropped/``).

Accounting unit: one input pair row (a row of the extract stage's ``pairs/``). Every row is
kept, or dropped with exactly one reason: the *first* rule, in the recipe's order, that
rejects it. Exact deduplication runs after every per-row rule, over the rows still kept, so a
duplicate is only counted as one when its first copy survived the rules. MetaCLIP balancing's
draw runs last, over the rows the dedup kept.
``in == kept + sum(dropped.values())`` always holds in ``stats.json``.
"""

import pyarrow as pa

from vlcurate.schemas.extract import PAIR_SCHEMA

SCHEMA_VERSION = "filter/1"

# --- caption validity (always first, whatever the recipe) ------------------------------------
CAPTION_EMPTY = "caption_empty"  # null, or nothing but whitespace
CAPTION_CONTROL_CHARS = "caption_control_chars"  # NUL or other control characters
CAPTION_OVERSIZED = "caption_oversized"  # longer than the caption_valid limit (bytes)
# --- length -----------------------------------------------------------------------------------
TOO_FEW_CHARS = "too_few_chars"
TOO_MANY_CHARS = "too_many_chars"
TOO_FEW_WORDS = "too_few_words"
TOO_MANY_WORDS = "too_many_words"
# --- junk alt text ----------------------------------------------------------------------------
CAPTION_FILENAME = "caption_is_filename"  # IMG_2031.JPG, DSC0001, a hex hash
CAPTION_GENERIC = "caption_is_generic"  # "image", "photo", "logo", "click here", ...
CAPTION_URL = "caption_is_url"
CAPTION_DIGITS = "caption_is_digits"
CAPTION_PUNCTUATION = "caption_is_punctuation"
# --- image URL and declared size --------------------------------------------------------------
URL_EXTENSION = "url_extension_not_allowed"
URL_JUNK_WORD = "url_junk_word"  # mmc4: logo, button, icon, plugin, widget
TRACKING_PIXEL = "tracking_pixel"  # declared 1x1 (or smaller)
DECLARED_TOO_SMALL = "declared_size_too_small"  # width/height attributes below the minimum
# --- language ---------------------------------------------------------------------------------
LANGUAGE_NOT_WANTED = "language_not_wanted"
LANGUAGE_UNCERTAIN = "language_uncertain"  # top language's confidence below the minimum
# not a reason: the ``language`` of a caption kept although no language scored nolang_below
NOLANG = "nolang"  # (LAION-5B's no-language subset, laion1B-nolang)
# --- Conceptual Captions text rules ----------------------------------------------------------
LOWERCASE_START = "lowercase_start"  # the first word is lower-case
TOO_MANY_CAPITALS = "too_many_capitals"  # more capitalised words than the maximum share
TOKEN_REPETITION = "token_repetition"  # one word is too large a share of the caption
LOW_UNIQUE_RATIO = "low_unique_ratio"  # too few distinct words
OUT_OF_VOCABULARY = "out_of_vocabulary"  # words outside the English vocabulary
PROFANITY = "profanity"  # a word of the profanity list
EXTREME_SENTIMENT = "extreme_sentiment"  # VADER's compound polarity beyond the maximum
POS_STRUCTURE = "pos_structure"  # lacks the determiner/noun/preposition (or noun/verb) structure
NOUN_RATIO = "noun_ratio"  # nouns are too large a share of the words
RARE_ENTITY_TYPE = "rare_entity_type"  # names an entity of a type the recipe drops
# --- exact deduplication (after all rules) ----------------------------------------------------
DUPLICATE_UID = "duplicate_uid"  # same md5(caption + url) as an earlier kept row
DUPLICATE_URL = "duplicate_url"  # the URL already has max_per_url earlier kept rows
# --- MetaCLIP balancing (metaclip_balance) ---------------------------------------------------
METACLIP_NO_MATCH = "metaclip_no_entry"  # the caption matches no metadata entry (a rule)
METACLIP_SAMPLED_OUT = "metaclip_sampled_out"  # after dedup: the per-uid draw left it out

CANDIDATE_SCHEMA = pa.schema(
    [
        *PAIR_SCHEMA,
        pa.field("language", pa.string()),  # ISO 639 code from the language-id model
        pa.field("language_score", pa.float32()),  # its confidence, 0..1
        pa.field("caption_original", pa.string()),  # the caption before a rewrite, else null
        pa.field("recipe", pa.string(), nullable=False),  # "name/version" of the recipe
    ],
    metadata={"schema_version": SCHEMA_VERSION},
)

# The optional sink of dropped rows: the candidate columns plus why.
DROPPED_SCHEMA = pa.schema(
    [*CANDIDATE_SCHEMA, pa.field("drop_reason", pa.string(), nullable=False)],
    metadata={"schema_version": SCHEMA_VERSION},
)
