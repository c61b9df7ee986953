"""Dependency-free SVG plots of a comparison: accuracy against trainable parameters (log scale) and train time."""

from __future__ import annotations

import math
from html import escape

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 440, 300, 56, 16, 30, 44


def _ticks_log(lo: float, hi: float) -> list[float]:
    return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def _panel(rows: list[dict], x_key: str, x_label: str, log: bool, x0: int) -> list[str]:
    points = [(r[x_key], r["accuracy"], r["method"]) for r in rows if r.get(x_key)]
    out = [f'<g transform="translate({x0},0)">',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-weight="bold">accuracy vs {escape(x_label)}</text>']
    if not points:
        return out + [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no trained methods</text></g>']
    xs = [p[0] for p in points]
    accs = [r["accuracy"] for r in rows]
    y_lo, y_hi = max(0.0, min(accs) - 0.05), min(1.0, max(accs) + 0.05)
    if log:
        ticks = _ticks_log(min(xs), max(xs))
        x_lo, x_hi = math.log10(ticks[0]), math.log10(ticks[-1])
        if x_hi == x_lo:
            x_hi += 1

        def fx(v):
            return PAD_L + (math.log10(v) - x_lo) / (x_hi - x_lo) * (W - PAD_L - PAD_R)
    else:
        x_lo, x_hi = 0.0, max(xs) * 1.1
        ticks = [x_hi * i / 4 for i in range(5)]

        def fx(v):
            return PAD_L + (v - x_lo) / (x_hi - x_lo) * (W - PAD_L - PAD_R)

    def fy(v):
        return H - PAD_B - (v - y_lo) / ((y_hi - y_lo) or 1) * (H - PAD_T - PAD_B)

    out.append(f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{H - PAD_T - PAD_B}" fill="none" stroke="#888"/>')
    for t in ticks:
        label = f"{t:.0e}".replace("e+0", "e").replace("e+", "e") if log else f"{t:.0f}"
        out.append(f'<text x="{fx(t):.1f}" y="{H - PAD_B + 16}" text-anchor="middle" font-size="10">{label}</text>')
    for i in range(5):
        v = y_lo + (y_hi - y_lo) * i / 4
        out.append(f'<text x="{PAD_L - 6}" y="{fy(v) + 3:.1f}" text-anchor="end" font-size="10">{100 * v:.0f}%</text>')
    out.append(f'<text x="{PAD_L + (W - PAD_L - PAD_R) / 2}" y="{H - 8}" text-anchor="middle" font-size="11">{escape(x_label)}</text>')
    base = next((r["accuracy"] for r in rows if r["method"] == "baseline"), None)
    if base is not None:
        out.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{fy(base):.1f}" y2="{fy(base):.1f}" stroke="#c33" stroke-dasharray="4 3"/>'
                   f'<text x="{W - PAD_R - 2}" y="{fy(base) - 4:.1f}" text-anchor="end" font-size="10" fill="#c33">baseline</text>')
    dots = [(fx(x), fy(y), name) for x, y, name in points]
    for (cx, cy, name), (lx, ly) in zip(dots, place_labels(dots)):
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="#2a6fb0"/>')
        if (lx, ly) != (cx + 5, cy - 5):  # moved clear of another label: a leader line back to its point
            out.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{lx:.1f}" y2="{ly - 3:.1f}" stroke="#aaa" stroke-width="0.6"/>')
        out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="10">{escape(name)}</text>')
    return out + ["</g>"]


LABEL_CHAR_W, LABEL_H = 6.2, 11  # font-size 10 sans-serif, approximately


def label_box(x: float, y: float, name: str) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of a label whose baseline starts at (x, y)."""
    return x, y - LABEL_H + 2, x + LABEL_CHAR_W * len(name), y + 2


def place_labels(dots: list[tuple[float, float, str]]) -> list[tuple[float, float]]:
    """A baseline position per label, right of its point, moved down in steps until it overlaps no label placed
    before it (methods with near-equal accuracy and size otherwise print on top of each other)."""
    placed, out = [], []
    for cx, cy, name in dots:
        x, y = cx + 5, cy - 5
        for _ in range(40):
            box = label_box(x, y, name)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
            y += LABEL_H
        placed.append(label_box(x, y, name))
        out.append((x, y))
    return out


def comparison_svg(rows: list[dict]) -> str:
    """Two panels: accuracy vs trainable parameters (log x) and accuracy vs train time (s)."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{2 * W}" height="{H}" fill="white"/>']
    parts += _panel(rows, "trainable_params", "trainable parameters (log scale)", True, 0)
    parts += _panel(rows, "train_seconds", "train time (s)", False, W)
    return "\n".join(parts + ["</svg>"]) + "\n"
