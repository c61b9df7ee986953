"""Dependency-free SVG plots, rendered from metrics kept as data: a comparison (accuracy against trainable
parameters, log scale, and against train time) and one run's training curves (loss by step, validation scores by
epoch)."""

from __future__ import annotations

import math
from html import escape

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 440, 300, 56, 16, 30, 44


def _ticks_log(lo: float, hi: float) -> list[float]:
    return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def nice_ticks(lo: float, hi: float) -> list[float]:
    """4 to 7 round ticks (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi] with the least margin."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    power = math.floor(math.log10((hi - lo) / 5))
    best = None
    for step in (m * 10.0**k for k in range(power - 1, power + 2) for m in (1, 2, 2.5, 5)):
        first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
        if 3 <= last - first <= 6 and (best is None or ((last - first) * step, last - first) < best[0]):
            best = ((last - first) * step, last - first), first, last, step
    _, first, last, step = best
    return [round(i * step, 12) for i in range(first, last + 1)]


class Axes:
    """A panel's data-to-pixel mapping and its frame: x linear or log (ticks at powers of ten), y linear; linear
    axes widen to round ticks."""

    def __init__(self, x_lo: float, x_hi: float, y_lo: float, y_hi: float, *, log_x: bool = False):
        self.log_x = log_x
        if log_x:
            self.x_ticks = _ticks_log(x_lo, x_hi)
            self.x_lo, self.x_hi = math.log10(self.x_ticks[0]), math.log10(self.x_ticks[-1])
            if self.x_hi == self.x_lo:
                self.x_hi += 1
        else:
            self.x_ticks = nice_ticks(x_lo, x_hi)
            self.x_lo, self.x_hi = self.x_ticks[0], self.x_ticks[-1]
        self.y_ticks = nice_ticks(y_lo, y_hi)
        self.y_lo, self.y_hi = self.y_ticks[0], self.y_ticks[-1]

    def fx(self, v: float) -> float:
        v = math.log10(v) if self.log_x else v
        return PAD_L + (v - self.x_lo) / (self.x_hi - self.x_lo) * (W - PAD_L - PAD_R)

    def fy(self, v: float) -> float:
        return H - PAD_B - (v - self.y_lo) / ((self.y_hi - self.y_lo) or 1) * (H - PAD_T - PAD_B)

    def frame(self, x_label: str, *, percent: bool = False) -> list[str]:
        """The box, tick labels on both axes (y as percentages or as numbers) and the x axis label."""
        out = [f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{H - PAD_T - PAD_B}" fill="none" stroke="#888"/>']
        for t in self.x_ticks:
            label = f"{t:.0e}".replace("e+0", "e").replace("e+", "e") if self.log_x else f"{t:,g}"
            out.append(f'<text x="{self.fx(t):.1f}" y="{H - PAD_B + 16}" text-anchor="middle" font-size="10">{label}</text>')
        for v in self.y_ticks:
            label = f"{round(100 * v, 9):g}%" if percent else f"{v:g}"
            out.append(f'<text x="{PAD_L - 6}" y="{self.fy(v) + 3:.1f}" text-anchor="end" font-size="10">{label}</text>')
        out.append(f'<text x="{PAD_L + (W - PAD_L - PAD_R) / 2}" y="{H - 8}" text-anchor="middle" font-size="11">{escape(x_label)}</text>')
        return out


def _panel(rows: list[dict], x_key: str, x_label: str, log: bool, x0: int) -> list[str]:
    points = [(r[x_key], r["accuracy"], r["method"]) for r in rows if r.get(x_key)]
    out = [f'<g transform="translate({x0},0)">',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-weight="bold">accuracy vs {escape(x_label)}</text>']
    if not points:
        return out + [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no trained methods</text></g>']
    xs = [p[0] for p in points]
    accs = [r["accuracy"] for r in rows]
    ax = Axes(min(xs) if log else 0.0, max(xs), max(0.0, min(accs) - 0.02), min(1.0, max(accs) + 0.02), log_x=log)
    fx, fy = ax.fx, ax.fy
    out += ax.frame(x_label, percent=True)
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


TRAIN_COLOUR, VAL_COLOUR, F1_COLOUR = "#2a6fb0", "#d9822b", "#3a9a5b"


def _polyline(points: list[tuple[float, float]], colour: str) -> str:
    return (f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
            f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>')


def _legend(entries: list[tuple[str, str]], *, bottom: bool = False) -> list[str]:
    """Colour keys in the top right corner of the panel (where falling loss curves leave room), or the bottom right
    (where rising scores do)."""
    right = W - PAD_R - 8
    top = H - PAD_B - 8 - 14 * len(entries) if bottom else PAD_T + 8
    return [f'<rect x="{right - 10}" y="{top + 14 * i}" width="10" height="3" fill="{colour}"/>'
            f'<text x="{right - 14}" y="{top + 5 + 14 * i}" text-anchor="end" font-size="10">{escape(name)}</text>'
            for i, (name, colour) in enumerate(entries)]


def _loss_panel(curve: list[tuple[int, float]], history: list[dict]) -> list[str]:
    """Training loss at each logged step, validation loss at each epoch's last step, epoch boundaries."""
    out = [f'<text x="{W / 2}" y="18" text-anchor="middle" font-weight="bold">loss by training step</text>']
    val = [(h["step"], h["validation"]["loss"]) for h in history if h.get("step") and h["validation"].get("loss") is not None]
    if not curve:
        return out + [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no training steps logged</text>']
    steps = [x for x, _ in curve] + [x for x, _ in val]
    ax = Axes(0, max(steps), 0.0, max(y for _, y in curve + val))
    out += ax.frame("step (a forward and backward pass over one batch)")
    for h in history[:-1]:  # where each epoch ends, but the last (the right edge)
        if h.get("step"):
            x = ax.fx(h["step"])
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_T}" y2="{H - PAD_B}" stroke="#bbb" stroke-dasharray="3 3"/>')
    out.append(_polyline([(ax.fx(x), ax.fy(y)) for x, y in curve], TRAIN_COLOUR))
    if len(curve) == 1:
        out.append(f'<circle cx="{ax.fx(curve[0][0]):.1f}" cy="{ax.fy(curve[0][1]):.1f}" r="2.5" fill="{TRAIN_COLOUR}"/>')
    out += [f'<circle cx="{ax.fx(x):.1f}" cy="{ax.fy(y):.1f}" r="3.5" fill="{VAL_COLOUR}"/>' for x, y in val]
    return out + _legend([("train loss (mean over the rows since the last point)", TRAIN_COLOUR),
                          ("validation loss (end of each epoch)", VAL_COLOUR)])


def _scores_panel(history: list[dict], best_epoch: int) -> list[str]:
    """Validation accuracy and macro-F1 per epoch, the kept (best) epoch ringed."""
    out = [f'<text x="{W / 2}" y="18" text-anchor="middle" font-weight="bold">validation by epoch</text>']
    series = [(key, name, colour, [(h["epoch"], h["validation"][key]) for h in history if h["validation"].get(key) is not None])
              for key, name, colour in (("accuracy", "accuracy", TRAIN_COLOUR), ("macro_f1", "macro-F1", F1_COLOUR))]
    values = [y for *_, points in series for _, y in points]
    if not values:
        return out + [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no validation scores</text>']
    epochs = [h["epoch"] for h in history]
    ax = Axes(min(epochs) - 0.5, max(epochs) + 0.5, max(0.0, min(values) - 0.02), min(1.0, max(values) + 0.02))
    ticks = epochs if len(epochs) <= 12 else [t for t in nice_ticks(min(epochs), max(epochs)) if t in epochs]
    ax.x_lo, ax.x_hi, ax.x_ticks = min(epochs) - 0.5, max(epochs) + 0.5, ticks  # half an epoch of margin
    out += ax.frame("epoch", percent=True)
    for _, _, colour, points in series:
        if len(points) > 1:
            out.append(_polyline([(ax.fx(x), ax.fy(y)) for x, y in points], colour))
        out += [f'<circle cx="{ax.fx(x):.1f}" cy="{ax.fy(y):.1f}" r="3" fill="{colour}"/>' for x, y in points]
    best = next((h for h in history if h["epoch"] == best_epoch), None)
    if best and best["validation"].get("accuracy") is not None:
        x, y = ax.fx(best_epoch), ax.fy(best["validation"]["accuracy"])
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" stroke="#c33" stroke-width="1.5"/>'
                   f'<text x="{x:.1f}" y="{y - 11:.1f}" text-anchor="middle" font-size="10" fill="#c33">kept</text>')
    return out + _legend([(name, colour) for _, name, colour, _ in series], bottom=True)


def training_svg(metrics: dict) -> str:
    """One run's curves from its metrics.json: loss by step (train and validation) and validation scores by epoch."""
    train = metrics["train"]
    curve = [(int(x), float(y)) for x, y in train.get("loss_curve", [])]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{2 * W}" height="{H}" fill="white"/>']
    parts += _loss_panel(curve, metrics["history"])
    parts += [f'<g transform="translate({W},0)">', *_scores_panel(metrics["history"], train["best_epoch"]), "</g>"]
    return "\n".join(parts + ["</svg>"]) + "\n"
