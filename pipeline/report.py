"""One self-contained ``report.html`` for the select stage: the models, the funnel of every stage,
a histogram per score with its thresholds, and thumbnails of kept and dropped samples. All of it
inlined (PNG plots, JPEG ``data:`` thumbnails, a little CSS, no JavaScript), and everything that
comes from the data goes through ``html.escape``."""

import base64
import io
import re
from collections import Counter
from collections.abc import Callable
from html import escape

import numpy as np
import pyarrow as pa
from PIL import Image

from vlcurate.pipeline import storage

THUMB_PX = 160
KEPT = "kept"
CLIP_COLUMN = re.compile(r"^clip_.+_sim$")
SCORE_COLUMNS = ("nsfw_p", "watermark_p", "face_count", "width", "height", "aspect_ratio")
# Everything Pillow raises on bytes that are not a picture it can open and fully decode.
UNDECODABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .4em 1.2em .8em 0; display: inline-table;
        vertical-align: top; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.note { background: #fff4d6; border-left: 4px solid #e0a800; padding: .4em .8em; margin: .3em 0; }
.bad { color: #b00; font-weight: bold; }
.plots img { margin: 0 .6em .6em 0; border: 1px solid #eee; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; }
.tile { width: 172px; border: 1px solid #ddd; padding: 5px; font-size: 11px;
        overflow-wrap: anywhere; }
.tile img, .ph { display: block; max-width: 160px; max-height: 160px; margin: 0 auto 4px; }
.ph { width: 160px; height: 100px; background: #eee; color: #888; text-align: center;
      line-height: 100px; }
.cap { margin: 2px 0; } .sc { color: #555; } .reason { color: #b00; } .reason.ok { color: #070; }
"""


def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas, without pyplot and its global state."""
    from matplotlib.figure import Figure  # the select extra installs it

    return Figure(figsize=(width, height), dpi=90)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return _uri(buf.getvalue(), "image/png")


def _img(src: str, alt: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<img{klass} src="{src}" alt="{escape(alt)}">'


def _table(header: list[str], rows: list[list], caption: str = "") -> str:
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c:,}</td>' if type(c) is int else f"<td>{escape(str(c))}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table>{cap}<tr>{head}</tr>{body}</table>"


def _header(title: str, models: list[dict], notes) -> str:
    keys = list(dict.fromkeys(k for m in models for k in m))
    parts = [f"<h1>{escape(title)}</h1>"]
    parts += [f'<p class="note">{escape(n)}</p>' for n in notes]
    if models:
        parts.append(_table(keys, [[m.get(k, "") for k in keys] for m in models], "models"))
    return "\n".join(parts)


def _share(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "–"


def _stage_table(name: str, stats: dict) -> str:
    n_in, kept, dropped = stats["in"], stats["kept"], stats.get("dropped", {})
    unit = f" ({stats['unit']})" if stats.get("unit") else ""
    rows = [["in", n_in, ""], [KEPT, kept, _share(kept, n_in)]]
    for reason, n in sorted(dropped.items(), key=lambda kv: (-kv[1], kv[0])):
        rows.append([f"dropped: {reason}", n, _share(n, n_in)])
    for host, n in sorted(stats.get("failures_by_host", {}).items(), key=lambda kv: -kv[1])[:10]:
        rows.append([f"failures at {host}", n, _share(n, n_in)])  # the download's worst hosts
    html = _table(["", "count", "share of in"], rows, f"{name}{unit}")
    if n_in != kept + sum(dropped.values()):
        html += f'<p class="bad">{escape(name)}: in != kept + dropped</p>'
    return html


def _funnel_plot(funnel: list[tuple[str, dict]]) -> str:
    fig = _figure(8, 0.5 * len(funnel) + 1.2)
    ax = fig.add_subplot()
    labels = [f"{name} ({s['unit']})" if s.get("unit") else name for name, s in funnel]
    y = np.arange(len(funnel))[::-1]
    ins = [s["in"] for _, s in funnel]
    kept = [s["kept"] for _, s in funnel]
    ax.barh(y, ins, color="#c8d6e5", label="in")
    ax.barh(y, kept, height=0.5, color="#2e86de", label=KEPT)
    for yi, i, k in zip(y, ins, kept, strict=True):
        ax.annotate(f" {k:,} / {i:,}", (max(i, 1), yi), va="center", fontsize=8)
    if max(ins, default=0) > 100 * max(min(ins, default=1), 1):
        ax.set_xscale("log")  # counts span several units (records, URLs, samples)
    ax.set_yticks(y, labels)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("funnel: kept of in, per stage")
    return _png(fig)


def _funnel(funnel: list[tuple[str, dict]]) -> str:
    if not funnel:
        return "<h2>Funnel</h2><p>no stages</p>"
    tables = "".join(_stage_table(name, stats) for name, stats in funnel)
    return f"<h2>Funnel</h2><div>{_img(_funnel_plot(funnel), 'funnel')}</div><div>{tables}</div>"


def _reasons(table: pa.Table) -> list[str]:
    """Each row's group: ``kept`` when the reason is null or empty, else the drop reason."""
    if "reason" not in table.column_names:
        return [KEPT] * table.num_rows
    return [r if r else KEPT for r in table.column("reason").to_pylist()]


def score_columns(table: pa.Table) -> list[str]:
    """The numeric score columns present in ``table``, CLIP similarities first."""
    names = [n for n in table.column_names if CLIP_COLUMN.match(n)]
    names += [n for n in SCORE_COLUMNS if n in table.column_names]
    return [n for n in names if _numeric(table.column(n).type)]


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _histogram(name: str, values: list, groups: list[str], lines: list[tuple[str, float]]) -> str:
    pairs = [(float(v), g) for v, g in zip(values, groups, strict=True) if v is not None]
    kept = np.array([v for v, g in pairs if g == KEPT and np.isfinite(v)])
    gone = np.array([v for v, g in pairs if g != KEPT and np.isfinite(v)])
    every = np.concatenate([kept, gone, [v for _, v in lines]])
    bins = np.histogram_bin_edges(every, bins=30)
    if every.size and np.all(every == np.round(every)) and every.max() - every.min() <= 60:
        bins = np.arange(every.min() - 0.5, every.max() + 1.5)  # counts: one bar per value
    fig = _figure(5, 2.8)
    ax = fig.add_subplot()
    ax.hist(
        [kept, gone],
        bins=bins,
        stacked=True,
        color=["#2e86de", "#ee5253"],
        label=[f"{KEPT} ({len(kept)})", f"dropped ({len(gone)})"],
    )
    for i, (label, value) in enumerate(lines):
        ax.axvline(value, color="black", linestyle="--", linewidth=1)
        ax.annotate(
            label,
            (value, 0.95 - 0.1 * i),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            ha="left",
            va="top",
        )
    nulls = values.count(None)
    ax.set_title(f"{name}" + (f" ({nulls} null)" if nulls else ""), fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    return _png(fig)


def _histograms(table: pa.Table, groups: list[str], thresholds: dict) -> str:
    plots = []
    for name in score_columns(table):
        values = table.column(name).to_pylist()
        if all(v is None for v in values):
            continue
        plots.append(_img(_histogram(name, values, groups, thresholds.get(name, [])), name))
    return "<h2>Scores</h2><div class='plots'>" + ("".join(plots) or "<p>no scores</p>") + "</div>"


def pick(groups: list[str], per_reason: int, seed: int) -> list[tuple[str, int, list[int]]]:
    """``(group, size, row indices)``: kept first, then reasons by count; at most ``per_reason``
    rows each, chosen by ``numpy.random.default_rng(seed)`` and listed in table order."""
    counts = Counter(groups)
    order = sorted(counts, key=lambda g: (g != KEPT, -counts[g], g))
    rng = np.random.default_rng(seed)
    picked = []
    for group in order:
        rows = [i for i, g in enumerate(groups) if g == group]
        if len(rows) > per_reason:
            rows = sorted(rng.choice(rows, size=per_reason, replace=False).tolist())
        picked.append((group, counts[group], rows))
    return picked


def thumbnail(data: bytes | None) -> str | None:
    """A JPEG ``data:`` URI at most ``THUMB_PX`` on the long side, or None if it won't decode."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (THUMB_PX, THUMB_PX))  # JPEG: decode at a smaller scale
            im = im.convert("RGB")
            im.thumbnail((THUMB_PX, THUMB_PX))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
    except UNDECODABLE:
        return None
    return _uri(buf.getvalue(), "image/jpeg")


def _fmt(v, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)


def _scores(row: dict) -> str:
    clip = next((row[k] for k in row if CLIP_COLUMN.match(k)), None)
    parts = [f"clip {_fmt(clip)}", f"nsfw {_fmt(row.get('nsfw_p'), '.2f')}"]
    parts += [
        f"wm {_fmt(row.get('watermark_p'), '.2f')}",
        f"faces {_fmt(row.get('face_count'), 'g')}",
    ]
    if row.get("width") is not None and row.get("height") is not None:
        parts.append(f"{row['width']:g}×{row['height']:g}")
    return " · ".join(parts)


def _tile(row: dict, data: bytes | None) -> str:
    src = thumbnail(data)
    if src:
        pic = _img(src, row.get("uid") or "", "thumb")
    else:
        pic = f'<div class="ph">{"no image" if not data else "undecodable image"}</div>'
    reason = row.get("reason") or KEPT
    return (
        f'<div class="tile">{pic}<div class="cap">{escape(str(row.get("caption") or ""))}</div>'
        f'<div class="sc">{escape(_scores(row))}</div>'
        f'<div class="reason {"ok" if reason == KEPT else ""}">{escape(reason)}</div></div>'
    )


def _grid(table: pa.Table, groups: list[str], images: Callable, per_reason: int, seed: int) -> str:
    picked = pick(groups, per_reason, seed)
    rows = table.take(pa.array([i for _, _, idx in picked for i in idx], pa.int64())).to_pylist()
    pictures = images(rows) or {}
    parts, it = ["<h2>Samples</h2>"], iter(rows)
    for group, size, idx in picked:
        tiles = "".join(_tile(row, pictures.get(row.get("uid"))) for row in (next(it) for _ in idx))
        parts.append(f"<h3>{escape(group)}: {size:,} ({len(idx)} shown)</h3>")
        parts.append(f'<div class="grid">{tiles}</div>')
    return "\n".join(parts)


def write_report(
    path: str,
    *,
    title: str,
    funnel: list[tuple[str, dict]],
    table: pa.Table,
    thresholds: dict[str, list[tuple[str, float]]],
    images: Callable[[list[dict]], dict[str, bytes]],
    models: list[dict],
    notes: list[str] = (),
    sections: list[str] = (),
    per_reason: int = 12,
    seed: int = 0,
) -> None:
    """Write the report to ``path`` (a temporary name, then renamed). ``images(rows)`` is called
    once with every picked row and returns ``{uid: encoded image bytes}`` for those it has;
    ``sections`` (HTML) go between the histograms and the thumbnails."""
    groups = _reasons(table)
    histograms = _histograms(table, groups, thresholds)
    grid = _grid(table, groups, images, per_reason, seed)
    body = "\n".join([_header(title, models, notes), _funnel(funnel), histograms, *sections, grid])
    html = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
    with storage.atomic_open(path) as f:
        f.write(html.encode("utf-8"))
