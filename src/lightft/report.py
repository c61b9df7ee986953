"""Render metrics (kept as data in metrics.json) into a readable Markdown report and comparison tables."""

from __future__ import annotations

import math
from typing import Any

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One bar character per value, scaled between the finite minimum and maximum; ``?`` for nan/inf."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "?" * len(values)
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    return "".join(BARS[min(len(BARS) - 1, int((v - lo) / span * (len(BARS) - 1) + 0.5))]
                   if v is not None and math.isfinite(v) else "?" for v in values)


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _cell(value: Any) -> str:
    """A table cell: a '|' in a label would start a new column, a line break end the row."""
    return " ".join(str(value).split("\n")).replace("|", "\\|")


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def settings_line(config: dict, precision_used: str | None = None, *, per_method: bool = True) -> str:
    """The settings that shape a result, in one line (all of them are in config.yaml); without ``per_method`` the
    learning rate and the method's own options are left out (a comparison shows them per row)."""
    from lightft.methods import get_method

    batch = f"batch {config['batch_size']}" + (f" x {config['grad_accum']} accumulated" if config["grad_accum"] > 1 else "")
    if config.get("max_tokens"):
        batch = f"batches of at most {config['max_tokens']:,} tokens"
    parts = [f"lr {config['lr']:g}"] if per_method else []
    parts += [f"{config['epochs']} epoch{'s' if config['epochs'] != 1 else ''}", batch,
             f"max length {config['max_length']}", f"warmup {config['warmup_ratio']:.0%}",
             f"weight decay {config['weight_decay']:g}", f"seed {config['seed']}"]
    precision = config["precision"]
    parts.append(f"precision {precision}" + (f" ({precision_used})" if precision_used and precision_used != precision else ""))
    try:
        options = get_method(config["method"]).options if per_method else ()
    except Exception:  # a method this version does not know: show the shared settings only
        options = ()
    parts += [f"{name.replace('_', '-')} {config[name]:g}" if isinstance(config[name], float) else
              f"{name.replace('_', '-')} {config[name]}" for name in options if config.get(name) is not None]
    parts += [f"{name.replace('_', '-')} {config[name]:,}" for name in ("limit_train", "limit_eval") if config.get(name)]
    if config.get("class_weights", "none") != "none":
        parts.append(f"class weights {config['class_weights']}")
    return ", ".join(parts) + "."


def render_report(metrics: dict, config: dict) -> str:
    ev, base, params, train = metrics["eval"], metrics.get("baseline"), metrics["params"], metrics["train"]
    data = metrics["data"]
    out = [f"# lightft run: {metrics['method']} on {data['name']}", ""]
    columns = (f" (text column `{data['text_column']}`, label column `{data['label_column']}`)"
               if data.get("text_column") and data.get("label_column") else "")
    out += [f"Model `{metrics['model']}`, {data['sizes']['train']} train / {data['sizes']['validation']} validation / "
            f"{data['sizes']['test']} test rows{columns}, labels {', '.join(data['labels'])}.", ""]
    out += ["## Settings", "", settings_line(config, metrics.get("environment", {}).get("precision")), ""]
    rows = []
    if base:
        rows.append(["baseline (untrained head)", pct(base["accuracy"]), pct(base["macro_f1"]), f"{base['loss']:.4f}"])
    rows.append([f"{metrics['method']} (best epoch {train['best_epoch']})", pct(ev["accuracy"]), pct(ev["macro_f1"]), f"{ev['loss']:.4f}"])
    out += ["## Test results", "", markdown_table(["model", "accuracy", "macro-F1", "loss"], rows), ""]
    out += ["## Cost", "", markdown_table(
        ["trainable params", "share", "train time", "samples/s", "peak memory", "saved weights"],
        [[f"{params['trainable']:,} of {params['total']:,}", f"{params['trainable_percent']:.4f}%",
          f"{train['seconds']:.1f} s", train["samples_per_second"], f"{train['peak_memory_mb']:.0f} MB",
          human_bytes(metrics.get("artifact", {}).get("bytes"))]]), ""]
    out += ["## Per class (test)", "", markdown_table(
        ["class", "precision", "recall", "F1", "support"],
        [[c, pct(v["precision"]), pct(v["recall"]), pct(v["f1"]), v["support"]] for c, v in ev["per_class"].items()]), ""]
    names = list(ev["per_class"])
    out += ["## Confusion matrix (test; rows true, columns predicted)", "", markdown_table(
        ["", *names], [[names[i], *row] for i, row in enumerate(ev["confusion_matrix"])]), ""]
    hist_rows = [[h["epoch"], "—" if h["train_loss"] is None else f"{h['train_loss']:.4f}", pct(h["validation"]["accuracy"]), pct(h["validation"]["macro_f1"]),
                  "—" if h["validation"]["loss"] is None else f"{h['validation']['loss']:.4f}", "best" if h["epoch"] == train["best_epoch"] else "diverged" if h.get("diverged") else ""] for h in metrics["history"]]
    out += ["## Training history", "", markdown_table(
        ["epoch", "train loss" + (" (class-weighted)" if config.get("class_weights", "none") != "none" else ""),
         "val accuracy", "val macro-F1", "val loss", "note"], hist_rows), ""]
    if train.get("interrupted"):
        out += [f"Training was interrupted after epoch {len(metrics['history'])} of {config.get('epochs', '?')}; "
                f"epoch {train['best_epoch']}, the best so far, is the result.", ""]
    for stop in train.get("resumed", []):
        out += [f"The process stopped and the run was resumed from its saved training state in epoch {stop['epoch']}, "
                f"after step {stop['step']}: the same batches and updates as a run that never stopped.", ""]
    curve = [loss for _, loss in train.get("loss_curve", [])]
    if len(curve) >= 3:  # fewer points draw no curve
        out += [f"Training loss, {len(curve)} point{'' if len(curve) == 1 else 's'} from {curve[0]:.3f} to {curve[-1]:.3f}: `{sparkline(curve)}`", ""]
    out += ["![loss by step and validation scores by epoch](training.svg)", ""]
    if data.get("notes"):
        out += ["## Data notes", "", *[f"- {n}" for n in data["notes"]], ""]
    env = metrics.get("environment", {})
    out += ["## Environment", "", ", ".join(f"{k} {v}" for k, v in env.items()), "",
            "Re-run with `lightft train --config config.yaml --output NEW_DIR`.", ""]
    return "\n".join(out)
