"""Inline SVG charts for the run report, drawn in Python (no JS, no external assets).

Every chart is an `<svg role="img">` with an aria-label and a <title>, prints its numbers as text, and
escapes every label and attribute it draws (all markup goes through `_el`). Functions return a `Chart`:
its title (the page shows it as a caption) and its SVG as `Markup`, which the template embeds as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
TEXT = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
ACCENT = "#2563eb"
CHAR_WIDTH = 7.0  # a generous average width of a 12px character, used to size label columns


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    color: str | None = None
    note: str = ""  # extra text after the value, e.g. a share


@dataclass(frozen=True)
class Chart:
    title: str
    svg: Markup


Formatter = Callable[[float], str]


def fmt_count(value: float) -> str:
    return f"{value:,.0f}"


def _el(tag: str, *children: str, text: str | None = None, **attrs: object) -> str:
    """One SVG element. `text` is escaped; `children` are elements built here. Attribute names use `_`
    for `-` (text_anchor -> text-anchor); values are escaped and floats rounded to 0.1."""
    rendered = "".join(
        f' {name.replace("_", "-")}="{escape(f"{value:.1f}" if isinstance(value, float) else str(value))}"'
        for name, value in attrs.items()
    )
    inner = (escape(text) if text is not None else "") + "".join(children)
    return f"<{tag}{rendered}>{inner}</{tag}>" if inner else f"<{tag}{rendered}/>"


def _tip(text: str) -> str:
    """A hover tooltip for the enclosing group (also read by screen readers)."""
    return _el("title", text=text)


def _clip(label: str, max_chars: int) -> str:
    return label if len(label) <= max_chars else label[: max_chars - 1] + "…"


def _svg(width: float, height: float, title: str, body: list[str]) -> Chart:
    svg = _el(
        "svg", _tip(title), *body,
        xmlns="http://www.w3.org/2000/svg", role="img", aria_label=title,
        viewBox=f"0 0 {width:.0f} {height:.0f}", width="100%", style=f"max-width:{width:.0f}px",
        font_family=FONT, font_size=12, fill=TEXT,
    )
    return Chart(title, Markup(svg))


def hbar_chart(
    bars: Sequence[Bar], title: str, *, fmt: Formatter = fmt_count, width: int = 760, max_label: int = 30
) -> Chart:
    """Horizontal bars, one row per item, label on the left and the value printed after the bar."""
    row, bar_h, pad = 26, 18, 8
    longest = max((len(_clip(b.label, max_label)) for b in bars), default=4)
    label_w = min(max(longest * CHAR_WIDTH + 12, 60), 230)
    value_w = max((len(fmt(b.value) + b.note) for b in bars), default=4) * CHAR_WIDTH + 16
    plot_w = max(width - label_w - value_w, 60)
    top = max((b.value for b in bars), default=0) or 1
    body = []
    for i, b in enumerate(bars):
        y = pad + i * row
        w = max(b.value, 0) / top * plot_w
        value = fmt(b.value) + b.note
        body.append(_el(
            "g", _tip(f"{b.label}: {value}"),
            _el("text", text=_clip(b.label, max_label), x=label_w - 8, y=y + bar_h - 5, text_anchor="end"),
            _el("rect", x=label_w, y=y, width=w, height=bar_h, rx=2, fill=b.color or ACCENT),
            _el("text", text=value, x=label_w + w + 6, y=y + bar_h - 5, fill=MUTED),
        ))
    return _svg(width, pad * 2 + len(bars) * row, title, body)


def column_chart(
    bars: Sequence[Bar], title: str, *, fmt: Formatter = fmt_count, width: int = 760, height: int = 220
) -> Chart:
    """Vertical columns (a histogram), the value above each column and the label below."""
    top_pad, bottom_pad, side = 22, 34, 10
    base = height - bottom_pad
    slot = (width - 2 * side) / max(len(bars), 1)
    top = max((b.value for b in bars), default=0) or 1
    body = [_el("line", x1=side, x2=width - side, y1=base, y2=base, stroke=GRID)]
    for i, b in enumerate(bars):
        h = max(b.value, 0) / top * (height - top_pad - bottom_pad)
        mid = side + i * slot + slot / 2
        body.append(_el(
            "g", _tip(f"{b.label}: {fmt(b.value)}{b.note}"),
            _el("rect", x=mid - slot * 0.38, y=base - h, width=slot * 0.76, height=h, rx=2,
                fill=b.color or ACCENT),
            _el("text", text=fmt(b.value), x=mid, y=base - h - 5, text_anchor="middle", fill=MUTED),
            _el("text", text=b.label, x=mid, y=base + 16, text_anchor="middle", font_size=11),
        ))
    return _svg(width, height, title, body)


def stacked_hbar_chart(
    rows: Sequence[tuple[str, Mapping[str, float]]],
    series: Sequence[tuple[str, str]],
    title: str,
    *,
    width: int = 760,
) -> Chart:
    """One bar per row split into `series` (name, colour) parts, all scaled to the largest row total."""
    row, bar_h, legend_h = 30, 20, 28
    label_w = min(max((len(label) for label, _ in rows), default=4) * CHAR_WIDTH + 14, 200)
    totals = [sum(max(parts.get(name, 0), 0) for name, _ in series) for _, parts in rows]
    total_w = max((len(fmt_count(t)) for t in totals), default=1) * CHAR_WIDTH + 16
    plot_w = width - label_w - total_w
    top = max(totals, default=0) or 1
    body = []
    x = label_w
    for name, color in series:  # legend
        body.append(_el("rect", x=x, y=6, width=12, height=12, rx=2, fill=color))
        body.append(_el("text", text=name, x=x + 17, y=16))
        x += 17 + len(name) * CHAR_WIDTH + 18
    for i, ((label, parts), total) in enumerate(zip(rows, totals, strict=True)):
        y = legend_h + 6 + i * row
        body.append(_el("text", text=label, x=label_w - 8, y=y + bar_h - 6, text_anchor="end"))
        x = label_w
        for name, color in series:
            value = max(parts.get(name, 0), 0)
            w = value / top * plot_w
            if w <= 0:
                continue
            inside = fmt_count(value)
            fits = len(inside) * CHAR_WIDTH + 6 < w
            body.append(_el(
                "g", _tip(f"{label} · {name}: {inside} ({value / total:.1%})"),
                _el("rect", x=x, y=y, width=w, height=bar_h, fill=color),
                _el("text", text=inside, x=x + w / 2, y=y + bar_h - 6, text_anchor="middle", fill="#fff")
                if fits else "",
            ))
            x += w
        body.append(_el("text", text=fmt_count(total), x=x + 6, y=y + bar_h - 6, fill=MUTED))
    return _svg(width, legend_h + 12 + len(rows) * row, title, body)


def funnel_chart(stages: Sequence[tuple[str, int]], title: str, *, width: int = 760) -> Chart:
    """Centred bars that narrow stage by stage; each shows its count and share of the first stage."""
    row, bar_h, label_w, value_w = 40, 30, 170, 170
    plot_w = width - label_w - value_w
    first = stages[0][1] if stages else 0
    top = max((v for _, v in stages), default=0) or 1
    body = []
    previous: int | None = None
    for i, (label, value) in enumerate(stages):
        y = 6 + i * row
        w = max(value / top * plot_w, 2)
        of_all = f"{value / first:.0%} of all" if first else "—"
        step = f" · {value / previous:.0%} of previous" if previous else ""
        body.append(_el(
            "g", _tip(f"{label}: {fmt_count(value)} ({of_all}{step})"),
            _el("text", text=label, x=label_w - 10, y=y + bar_h / 2 + 4, text_anchor="end"),
            _el("rect", x=label_w + (plot_w - w) / 2, y=y, width=w, height=bar_h, rx=3,
                fill=blend("#1d4ed8", "#93c5fd", i / max(len(stages) - 1, 1))),
            _el("text", _el("tspan", text=fmt_count(value), font_weight=600),
                _el("tspan", text=f" {of_all}", fill=MUTED), x=label_w + plot_w + 10, y=y + bar_h / 2 + 4),
        ))
        previous = value
    return _svg(width, 12 + len(stages) * row, title, body)


def heatmap(
    counts: Sequence[Sequence[int]],
    names: Sequence[Sequence[str]],
    title: str,
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    row_axis: str,
    col_axis: str,
) -> Chart:
    """A grid of counts; `counts[i][j]` is drawn in row i (top to bottom), column j, with `names[i][j]`
    under the count. Borders are drawn where neighbouring cells carry different names."""
    cell_w, cell_h, left, top_pad = 128, 62, 70, 10
    n_rows, n_cols = len(counts), len(counts[0]) if counts else 0
    peak = max((c for r in counts for c in r), default=0) or 1
    body, borders = [], []  # borders go last so no cell paints over them
    for i in range(n_rows):
        for j in range(n_cols):
            x, y, name = left + j * cell_w, top_pad + i * cell_h, names[i][j]
            strength = counts[i][j] / peak
            ink = "#fff" if strength > 0.45 else TEXT
            cell = f"{row_axis} {row_labels[i]}, {col_axis} {col_labels[j]}"
            body.append(_el(
                "g", _tip(f"{cell}: {fmt_count(counts[i][j])} customers ({name})"),
                _el("rect", x=x, y=y, width=cell_w, height=cell_h, stroke="#fff",
                    fill=blend("#eff6ff", "#1e3a8a", strength**0.7)),
                _el("text", text=fmt_count(counts[i][j]), x=x + cell_w / 2, y=y + 27, text_anchor="middle",
                    font_size=16, font_weight=600, fill=ink),
                _el("text", text=_clip(name, 20), x=x + cell_w / 2, y=y + 46, text_anchor="middle",
                    font_size=10.5, fill=ink),
            ))
            if j + 1 < n_cols and names[i][j + 1] != name:
                borders.append(_line(x + cell_w, y, x + cell_w, y + cell_h))
            if i + 1 < n_rows and names[i + 1][j] != name:
                borders.append(_line(x, y + cell_h, x + cell_w, y + cell_h))
    body.extend(borders)
    bottom = top_pad + n_rows * cell_h
    for i, label in enumerate(row_labels):
        label_y = top_pad + i * cell_h + cell_h / 2 + 4
        body.append(_el("text", text=label, x=left - 10, y=label_y, text_anchor="end"))
    for j, label in enumerate(col_labels):
        label_x = left + j * cell_w + cell_w / 2
        body.append(_el("text", text=label, x=label_x, y=bottom + 18, text_anchor="middle"))
    body.append(_el("text", text=f"{col_axis} →", x=left + n_cols * cell_w / 2, y=bottom + 38,
                    text_anchor="middle", fill=MUTED))
    body.append(_el("text", text=f"{row_axis} →", transform=f"translate(18 {top_pad + n_rows * cell_h / 2}) "
                    "rotate(-90)", text_anchor="middle", fill=MUTED))
    return _svg(left + n_cols * cell_w + 10, bottom + 48, title, body)


def _line(x1: float, y1: float, x2: float, y2: float) -> str:
    return _el("line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=TEXT, stroke_width=2.5)


def blend(start: str, end: str, t: float) -> str:
    """Colour between two #rrggbb colours; t=0 gives start, t=1 gives end."""
    t = min(max(t, 0.0), 1.0)
    a = [int(start[k : k + 2], 16) for k in (1, 3, 5)]
    b = [int(end[k : k + 2], 16) for k in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))
