"""Records written by the select stage (``OUTPUT/final/``).

Accounting unit: one sample of the score stage (one row of ``scores/``). Each is kept, and
written to a final shard, or dropped with the first reason below that applies, in this order:
the score stage's decode status, a match with an eval image (``select.decontaminate``), the
recipe's rules, DataComp's image-based filter (``select.image_filter``), then near-duplicate
removal among the samples the rules kept, then MetaCLIP balancing (when the recipe asks).
``in == kept + sum(dropped.values())`` in ``stats.json``.

``selection.parquet`` holds every sample with its reason (null when kept), the sample it
duplicates, and where it went: the sink for inspecting what was dropped.
"""

import pyarrow as pa

SCHEMA_VERSION = "select/1"

# --- drop reasons, in the order they are tried ------------------------------------------------
# the score stage's decode statuses (schemas/score.py) come first: empty_file, decode_error,
# too_large
EVAL_DUPLICATE = "eval_duplicate"  # near-duplicate of an eval image (pHash + CLIP, or CLIP)
LANGUAGE = "language"  # the caption's language is not one the recipe keeps
# not a reason: in ``select.languages``, any identified language but English (LAION's
# laion2B-multi); the filter stage's ``nolang`` (schemas/filter.py) names the no-language subset
MULTILINGUAL = "multilingual"
IMAGE_TOO_SMALL = "image_too_small"  # the original image's shorter side is under min_side
ASPECT_RATIO = "aspect_ratio"  # the original image's long/short side ratio is over the maximum
CLIP_SIMILARITY = "clip_similarity"  # under clip_min, or outside the top clip_top_fraction
NSFW = "nsfw"  # nsfw_p over nsfw_max
WATERMARK = "watermark"  # watermark_p over watermark_max
FACES = "faces"  # faces found and the recipe's face policy is drop
# DataComp's image-based filter: its nearest k-means centre is none a reference image is nearest
IMAGE_CLUSTER_UNMATCHED = "image_cluster_unmatched"
DUPLICATE_EXACT = "duplicate_exact"  # same sha256 of the downloaded bytes as a better sample
DUPLICATE_PHASH = "duplicate_phash"  # pHash within the Hamming distance of a better sample
DUPLICATE_SEMANTIC = "duplicate_semantic"  # CLIP image embedding within the cosine of a better one

RULE_REASONS = (LANGUAGE, IMAGE_TOO_SMALL, ASPECT_RATIO, CLIP_SIMILARITY, NSFW, WATERMARK, FACES)
DEDUP_REASONS = (DUPLICATE_EXACT, DUPLICATE_PHASH, DUPLICATE_SEMANTIC)
# MetaCLIP balancing (select.balance), last, over the samples the dedup kept
METACLIP_NO_MATCH = "metaclip_no_entry"  # the caption matches no metadata entry
METACLIP_SAMPLED_OUT = "metaclip_sampled_out"  # the per-uid draw left it out
BALANCE_REASONS = (METACLIP_NO_MATCH, METACLIP_SAMPLED_OUT)

SELECTION_COLUMNS = [  # beside the score columns, in selection.parquet
    ("shard", pa.string()),  # input shard name (NNNNN)
    ("reason", pa.string()),  # null: kept
    ("duplicate_of", pa.string()),  # uid of the better sample it duplicates
    ("rank", pa.int64()),  # 0 = highest CLIP similarity; ties broken by uid
    ("final_shard", pa.string()),  # output shard name, kept samples only
    ("final_key", pa.string()),  # key in the output shard
]
# with select.decontaminate: the eval image a sample matched (FILE:KEY or FILE#ROW), the pHash
# distance (null: no pHash) and the CLIP image cosine; with select.image_filter: its cluster
EVAL_COLUMNS = [
    ("eval_match", pa.string()),
    ("eval_phash_distance", pa.int32()),
    ("eval_cosine", pa.float32()),
]
IMAGE_CLUSTER_COLUMN = ("image_cluster", pa.int32())
