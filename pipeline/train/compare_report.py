"""What ``curate compare`` shows: the metrics table (markdown, with each metric's spread across
seeds), the selections' make-up when the pool has a truth field, a bar plot, and the two in one
self-contained ``report.html``."""

import base64
from html import escape
from pathlib import Path

WAYS = ("image_to_text", "text_to_image")
METRICS = tuple((way, k) for way in WAYS for k in ("R@1", "R@5", "R@10"))
_SHORT = {"image_to_text": "I→T", "text_to_image": "T→I"}


def values(row: dict) -> dict[str, float]:
    """A row's (or one run's) metrics by column title; empty when the recipe trained nothing."""
    found = {}
    if "retrieval" in row:
        for way, k in METRICS:
            found[f"{_SHORT[way]} {k}"] = row["retrieval"][way][k]
    for name, result in row.get("zeroshot", {}).items():
        found[f"zero-shot {name}"] = result["top1"]
    return found


def _columns(rows: list[dict]) -> list[str]:
    return sorted({c for row in rows for c in values(row)}, key=_column_order)


def _column_order(column: str) -> tuple:
    order = [f"{w} {k}" for w in ("I→T", "T→I") for k in ("R@1", "R@5", "R@10")]
    return (order.index(column) if column in order else len(order), column)


def _cell(row: dict, column: str, seeds: int) -> str:
    v = values(row)
    if column not in v:
        return "–"
    if seeds > 1:
        return f"{v[column]:.3f} ± {row['spread'][column]:.3f}"
    return f"{v[column]:.3f}"


def _makeup(rows: list[dict]) -> list[str]:
    """The truth tally as a markdown table of shares of each selection."""
    kinds = list(dict.fromkeys(k for row in rows for k in row.get("truth", {})))
    if not kinds:
        return []
    lines = [
        "",
        "| recipe | kept | " + " | ".join(kinds) + " |",
        "|---|---:|" + "---:|" * len(kinds),
    ]
    for row in rows:
        total = max(1, sum(row["truth"].values()))
        shares = [f"{100 * row['truth'].get(k, 0) / total:.1f}%" for k in kinds]
        lines.append(f"| {row['recipe']} | {row['kept']} | " + " | ".join(shares) + " |")
    return lines


def table(result: dict) -> str:
    """The comparison as markdown: the metrics (mean ± standard deviation across seeds), the
    selections' make-up by truth when known, and the notes."""
    rows, c = result["rows"], result["config"]
    seeds = c.get("seeds", 1)
    columns = _columns(rows)
    runs = (
        f"seeds {c['seed']}..{c['seed'] + seeds - 1}, mean ± sd"
        if seeds > 1
        else f"seed {c['seed']}"
    )
    lines = [
        f"Budget: {c['samples']} samples seen, model {c['model']}, batch {c['batch_size']}, "
        f"{runs}; evaluated on {c['eval_shards']}",
        "",
        "| recipe | kept | " + " | ".join(columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for row in rows:
        cells = [_cell(row, col, seeds) for col in columns]
        lines.append(f"| {row['recipe']} | {row['kept']} | " + " | ".join(cells) + " |")
    lines += _makeup(rows)
    notes = [f"- {row['recipe']}: {note}" for row in rows for note in row["notes"]]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def plot(result: dict, path: Path) -> None:
    """Grouped bars: one group per metric, one bar per recipe, the spread as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = [r for r in result["rows"] if values(r)]
    columns = _columns(rows)
    fig = Figure(figsize=(max(6, 1.2 * len(columns)), 3.6), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        v, spread = values(row), row.get("spread", {})
        xs = [j + i * width for j in range(len(columns))]
        heights = [v.get(c, 0) for c in columns]
        errors = [spread.get(c, 0) for c in columns]
        ax.bar(xs, heights, width, yerr=errors, label=f"{row['recipe']} ({row['kept']})")
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(columns))], columns)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(f"same model, same budget ({result['config']['samples']} samples seen)")
    ax.legend(title="recipe (kept)")
    fig.savefig(path, dpi=100)


def _html_table(lines: list[str]) -> str:
    """A markdown table's lines (header, rule, rows) as an HTML table."""
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    head = "".join(f"<th>{escape(c)}</th>" for c in cells[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in cells[2:]
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(result: dict, path: Path, png: Path) -> None:
    """``report.html``: the tables of :func:`table`, the plot inlined, the notes."""
    from vlcurate.pipeline.report import CSS

    parts, block = [], []
    for line in table(result).splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            parts.append(_html_table(block))
            block = []
        if line:
            parts.append(f"<p>{escape(line.removeprefix('- '))}</p>")
    image = base64.b64encode(png.read_bytes()).decode("ascii")
    parts.append(f'<p><img src="data:image/png;base64,{image}" alt="the comparison"></p>')
    html = (
        f"<!doctype html><meta charset=utf-8><title>curate compare</title><style>{CSS}</style>"
        f"<h1>curate compare: {escape(', '.join(r['recipe'] for r in result['rows']))}</h1>"
        + "\n".join(parts)
    )
    path.write_text(html, encoding="utf-8")
