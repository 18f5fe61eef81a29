"""The MetaCLIP section of ``report.html``: for each stage that balanced (the filter stage's
``metaclip_balance`` rule, select's ``balance:`` step), the parameters used and the per-entry
count histogram before and after the draw (:mod:`.metaclip_stats`), as an inline SVG bar chart
of the matches per log-spaced bin of ``count_e`` and a table of entries and matches."""

from html import escape

BEFORE, AFTER = "#c8d6e5", "#2e86de"  # the funnel plot's colours for in and kept
ROW_PX, LABEL_PX, BAR_PX = 16, 120, 360


def balancings(funnel, facts: dict) -> list[tuple[str, dict]]:
    """``(stage, facts)`` for each stage that balanced: the funnel's filter stats, select's."""
    found = [(name, s["metaclip_balance"]) for name, s in funnel if s.get("metaclip_balance")]
    if facts.get("balance"):
        found.append(("select", facts["balance"]))
    return found


def _svg(histogram: list[dict]) -> str:
    """Two bars a bin (matches before, after), lengths in proportion to the largest."""
    top = max([max(r["matches_before"], r["matches_after"]) for r in histogram] + [1])
    parts = []
    for i, row in enumerate(histogram):
        y = i * 2 * ROW_PX + 4
        parts.append(
            f'<text x="{LABEL_PX - 6}" y="{y + ROW_PX + 4}" text-anchor="end" '
            f'font-size="11">count_e {escape(row["bin"])}</text>'
        )
        for j, (key, colour) in enumerate((("matches_before", BEFORE), ("matches_after", AFTER))):
            width = BAR_PX * row[key] / top
            top_y = y + j * ROW_PX
            parts.append(
                f'<rect x="{LABEL_PX}" y="{top_y}" width="{width:.1f}" height="{ROW_PX - 2}" '
                f'fill="{colour}"><title>{key.replace("_", " ")}: {row[key]:,}</title></rect>'
                f'<text x="{LABEL_PX + width + 4:.1f}" y="{top_y + ROW_PX - 4}" '
                f'font-size="10">{row[key]:,}</text>'
            )
    height = len(histogram) * 2 * ROW_PX + 28
    legend_y = height - 8
    legend = (
        f'<rect x="{LABEL_PX}" y="{legend_y - 9}" width="10" height="10" fill="{BEFORE}"/>'
        f'<text x="{LABEL_PX + 14}" y="{legend_y}" font-size="11">matches before</text>'
        f'<rect x="{LABEL_PX + 120}" y="{legend_y - 9}" width="10" height="10" fill="{AFTER}"/>'
        f'<text x="{LABEL_PX + 134}" y="{legend_y}" font-size="11">matches after</text>'
    )
    width = LABEL_PX + BAR_PX + 90
    return (
        f'<svg class="balance" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" role="img" aria-label="matches per count_e bin">'
        f"{''.join(parts)}{legend}</svg>"
    )


COLUMNS = {  # the table's columns: the bins by the counts before, after, and what each kept
    "entries_before": "entries before",
    "matches_before": "matches before",
    "entries_after": "entries after",
    "matches_after": "matches after",
    "matches_kept": "matches kept of the entries before",
}


def _table(histogram: list[dict]) -> str:
    keys = [k for k in COLUMNS if all(k in r for r in histogram)]  # older stats: no kept
    head = "".join(f"<th>{h}</th>" for h in ("count_e", *(COLUMNS[k] for k in keys)))
    body = "".join(
        f"<tr><td>{escape(r['bin'])}</td>"
        + "".join(f'<td class="n">{r[k]:,}</td>' for k in keys)
        + "</tr>"
        for r in histogram
    )
    return f'<table class="balance"><tr>{head}</tr>{body}</table>'


def _summary(stage: str, f: dict) -> str:
    how = f"tail_fraction {f['tail_fraction']}" if f.get("t_from") == "tail_fraction" else "given"
    source = "builtin (WordNet + wordfreq)" if f["metadata_source"] == "builtin" else f["metadata"]
    return (
        f"<p><b>{escape(stage)}</b>: t = {f['t']:,} ({escape(how)}), seed {f['seed']}, "
        f"metadata {escape(str(source))} ({f['metadata_entries']:,} entries); "
        f"{f['entries_matched']:,} entries matched ({f['matches_before']:,} matches), "
        f"{f['entries_matched_after']:,} after the draw ({f['matches_after']:,} matches).</p>"
    )


def balance_section(funnel, facts: dict) -> str:
    """The section's HTML, or "" when no stage balanced."""
    found = balancings(funnel, facts)
    if not found:
        return ""
    parts = ["<h2>MetaCLIP balancing</h2>"]
    for stage, f in found:
        parts.append(_summary(stage, f))
        parts.append(f"<div>{_svg(f['histogram'])}{_table(f['histogram'])}</div>")
    return "\n".join(parts) + "\n"
