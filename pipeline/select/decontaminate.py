"""Decontamination (``select.decontaminate``): a pool sample whose image is a near-duplicate of
an eval image is dropped as ``eval_duplicate``, before the recipe's rules, so every overlap with
the eval sets is found and listed whatever else would have dropped the sample.

Decided as the dedup step decides (:mod:`vlcurate.pipeline.select.dedup`), with the eval images
in the place of the better-ranked neighbour: a pHash within ``phash_max_distance`` bits whose
CLIP image embeddings also agree (cosine ``>= phash_min_cosine``), or an embedding cosine
``>= semantic_min_cosine`` alone. Eval sets given as shards are hashed and embedded as the pool
was (:mod:`vlcurate.pipeline.select.references`); those given as embeddings have no pHash, so
only the cosine decides for them.

The pool is searched one input shard at a time against the eval images (a binary index for the
pHash range search, an inner-product index for the nearest embedding), so memory holds one
shard's embeddings beside the eval set's. Each matched sample records the eval image it matches
(the pHash pair with the fewest bits apart, else the nearest embedding), the pHash distance and
the cosine: the selection's ``eval_*`` columns, and the report's table.
"""

import faiss
import numpy as np
import pyarrow as pa

from vlcurate.pipeline.select import dedup, inputs, references
from vlcurate.pipeline.select.config import Decontaminate
from vlcurate.pipeline.storage import InputError
from vlcurate.schemas import score as score_schema
from vlcurate.schemas.select import EVAL_COLUMNS, EVAL_DUPLICATE

NONE = -1


def mark_eval_duplicates(
    table: pa.Table,
    scores: str,
    settings: dict,
    reason: np.ndarray,
    rule: Decontaminate,
    framing: dict | None = None,
) -> tuple[dict, dict]:
    """Mark (in ``reason``, in place) every decoded sample that matches an eval image; returns
    the ``eval_*`` columns for every row and the facts for stats.json."""
    n = table.num_rows
    match = np.full(n, NONE, dtype=np.int64)
    distance = np.full(n, NONE, dtype=np.int64)
    cosine = np.full(n, np.nan, dtype=np.float32)
    status = np.array(table["status"].to_pylist(), dtype=object)
    emb_row = table["emb_row"].to_numpy()
    candidates = np.flatnonzero((status == score_schema.DECODED) & (emb_row >= 0))
    evals = references.References(np.zeros((0, 0), np.float32), [], [])  # no pool: none read
    if len(candidates):
        dim = _pool_dim(scores, table, candidates)
        evals = references.load(rule.eval, settings, dim, framing, "select.decontaminate.eval")
        if not len(evals):  # nothing to compare with: a wrong path, not a clean pool
            raise InputError(
                f"select.decontaminate.eval: no eval image ({evals.undecoded} did not decode) "
                f"in {', '.join(rule.eval)}"
            )
    if len(evals) and len(candidates):
        search = EvalSearch(evals, rule)
        shard = np.array(table["shard"].to_pylist(), dtype=object)
        phash = table["phash"].to_pylist()
        for name in np.unique(shard[candidates]):
            rows = candidates[shard[candidates] == name]
            emb = inputs.load_embeddings(scores, shard[rows], emb_row[rows])
            found = search.match(emb, [phash[r] for r in rows])
            match[rows], distance[rows], cosine[rows] = found
    hit = match != NONE
    reason[hit] = EVAL_DUPLICATE
    names = np.array(evals.names + [None], dtype=object)
    columns = {
        "eval_match": pa.array(list(names[match]), EVAL_COLUMNS[0][1]),
        "eval_phash_distance": pa.array(
            [int(d) if h and d != NONE else None for h, d in zip(hit, distance, strict=True)],
            EVAL_COLUMNS[1][1],
        ),
        "eval_cosine": pa.array(
            [float(c) if h else None for h, c in zip(hit, cosine, strict=True)],
            EVAL_COLUMNS[2][1],
        ),
    }
    facts = {
        "decontaminate_eval_images": len(evals),
        "decontaminate_eval_undecoded": evals.undecoded,
        "decontaminate_matched": int(hit.sum()),
    }
    return columns, facts


def _pool_dim(scores: str, table: pa.Table, candidates: np.ndarray) -> int:
    """The width of the pool's image embeddings (one row read)."""
    first = candidates[:1]
    shard = np.array(table["shard"].take(first).to_pylist(), dtype=object)
    emb = inputs.load_embeddings(scores, shard, table["emb_row"].to_numpy()[first])
    return int(emb.shape[1])


class EvalSearch:
    """The eval images' indexes: a binary one over their pHashes, an inner-product one over
    their embeddings."""

    def __init__(self, evals: references.References, rule: Decontaminate):
        self.rule = rule
        self.embeddings = evals.embeddings
        self.index = faiss.IndexFlatIP(evals.embeddings.shape[1])
        self.index.add(evals.embeddings)
        self.phash = evals.phash
        self.hashed = np.array([i for i, h in enumerate(evals.phash) if h is not None], np.int64)
        self.bits = None
        if len(self.hashed) and rule.phash_max_distance is not None:
            self.bits = faiss.IndexBinaryFlat(64)
            self.bits.add(dedup.phash_bits([evals.phash[i] for i in self.hashed]))

    def match(self, emb: np.ndarray, phash: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(eval row, pHash distance, cosine)`` per pool row (``NONE``: no match)."""
        n = len(emb)
        match = np.full(n, NONE, dtype=np.int64)
        distance = np.full(n, NONE, dtype=np.int64)
        cosine = np.full(n, np.nan, dtype=np.float32)
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        if self.rule.semantic_min_cosine is not None:
            similar, nearest = self.index.search(emb, 1)
            close = similar[:, 0] >= np.float32(self.rule.semantic_min_cosine)
            match[close], cosine[close] = nearest[close, 0], similar[close, 0]
        if self.bits is not None:
            self._phash_pairs(emb, phash, match, distance, cosine)
        for i in np.flatnonzero((match != NONE) & (distance == NONE)):  # semantic matches
            theirs = self.phash[match[i]]
            if phash[i] is not None and theirs is not None:
                distance[i] = (int(phash[i], 16) ^ int(theirs, 16)).bit_count()
        return match, distance, cosine

    def _phash_pairs(self, emb, phash, match, distance, cosine) -> None:
        """pHash pairs within the distance whose embeddings agree; the closest pair wins (in
        place), and a semantic match gets its pHash distance when there is one."""
        where = np.array([i for i, h in enumerate(phash) if h is not None], np.int64)
        if not len(where):
            return
        lims, dist, ids = self.bits.range_search(
            dedup.phash_bits([phash[i] for i in where]), self.rule.phash_max_distance + 1
        )
        rows = where[np.repeat(np.arange(len(where)), np.diff(lims).astype(np.int64))]
        cols = self.hashed[ids.astype(np.int64)]
        cos = np.einsum("pd,pd->p", emb[rows], self.embeddings[cols])
        if self.rule.phash_min_cosine is not None:
            agree = cos >= np.float32(self.rule.phash_min_cosine)
            rows, cols, dist, cos = rows[agree], cols[agree], dist[agree], cos[agree]
        order = np.lexsort((-cos, dist, rows))  # per row: fewest bits, then highest cosine
        rows, cols, dist, cos = rows[order], cols[order], dist[order], cos[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = rows[1:] != rows[:-1]
        rows, cols, dist, cos = rows[first], cols[first], dist[first], cos[first]
        match[rows], distance[rows], cosine[rows] = cols, dist, cos
