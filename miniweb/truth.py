"""What the mini web knows about its images, set against what the scorers said."""

from pathlib import Path

import pyarrow.parquet as pq


def against_truth(scores: Path, manifest) -> str:
    """The scorers against what the mini web knows is in each image."""
    truth = {s.image_url: s for s in manifest.samples}
    rows = [r for r in pq.read_table(scores / "scores").to_pylist() if r["status"] == "ok"]
    known = [(r, truth[r["url"]]) for r in rows if r["url"] in truth]
    marked = [r for r, s in known if s.watermark]
    flagged = [r for r, s in known if not s.watermark and (r["watermark_p"] or 0) >= 0.5]
    with_faces = [(r, s) for r, s in known if s.faces]
    lines = [
        f"demo: {len(rows)} images scored; against the mini web's truth:",
        f"  watermarked: {sum((r['watermark_p'] or 0) >= 0.5 for r in marked)} of {len(marked)} "
        f"flagged (watermark_p >= 0.5); clean images flagged: {len(flagged)} of "
        f"{len(known) - len(marked)}",
        f"  faces: {sum(bool(r['face_count']) for r, _ in with_faces)} of {len(with_faces)} "
        f"images with faces found; nsfw_p max {max((r['nsfw_p'] for r in rows), default=0):.3f}",
    ]
    return "\n".join(lines)
