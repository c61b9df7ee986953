import xml.etree.ElementTree as ET

from lightft.plots import comparison_svg, training_svg

SVG = "{http://www.w3.org/2000/svg}"

ROWS = [
    {"method": "baseline", "accuracy": 0.5, "trainable_params": 0, "train_seconds": None},
    {"method": "lora", "accuracy": 0.82, "trainable_params": 74_498, "train_seconds": 896.1},
    {"method": "full", "accuracy": 0.86, "trainable_params": 22_713_986, "train_seconds": 578.4},
]


def test_comparison_svg_has_one_point_per_trained_method_per_panel():
    svg = comparison_svg(ROWS)
    root = ET.fromstring(svg)  # well-formed XML
    circles = root.findall(".//{http://www.w3.org/2000/svg}circle")
    assert len(circles) == 4  # lora + full, in both panels
    assert "trainable parameters (log scale)" in svg and "1e4" in svg and "1e8" in svg
    assert svg.count(">baseline<") == 2


def test_comparison_svg_without_trained_methods():
    assert "no trained methods" in comparison_svg(ROWS[:1])


def test_labels_of_clustered_methods_do_not_overlap():
    import json
    from pathlib import Path

    from lightft.plots import label_box, place_labels

    # the TREC all-methods run: 17 methods, most between 94% and 97% with similar sizes
    rows = json.loads((Path(__file__).resolve().parents[1] / "docs/results/trec-all-compare.json").read_text())["rows"]
    dots = [(100 + 10 * (i % 3), 120 + (r["accuracy"] - 0.94) * 400, r["method"]) for i, r in enumerate(rows)]
    boxes = [label_box(x, y, name) for (_, _, name), (x, y) in zip(dots, place_labels(dots))]
    for i, a in enumerate(boxes):
        for b in boxes[:i]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    svg = comparison_svg(rows)
    assert svg.count("<circle") == 2 * sum(1 for r in rows if r.get("trainable_params"))


def _metrics(history, curve, best=2):
    return {"train": {"loss_curve": curve, "best_epoch": best}, "history": history}


HISTORY = [
    {"epoch": 1, "step": 27, "validation": {"accuracy": 0.70, "macro_f1": 0.65, "loss": 0.61}},
    {"epoch": 2, "step": 54, "validation": {"accuracy": 0.80, "macro_f1": 0.78, "loss": 0.45}},
    {"epoch": 3, "step": 81, "validation": {"accuracy": 0.78, "macro_f1": 0.77, "loss": 0.52}},
]
CURVE = [[20, 0.69], [27, 0.66], [40, 0.55], [54, 0.50], [60, 0.41], [81, 0.38]]


def test_training_svg_draws_loss_by_step_and_scores_by_epoch():
    root = ET.fromstring(training_svg(_metrics(HISTORY, CURVE)))
    lines = root.findall(f".//{SVG}polyline")
    assert len(lines) == 3  # train loss; validation accuracy and macro-F1
    assert len(lines[0].get("points").split()) == len(CURVE)
    dashed = [e for e in root.iter(f"{SVG}line") if e.get("stroke-dasharray")]
    assert len(dashed) == 2  # the ends of epochs 1 and 2; epoch 3 ends at the right edge
    rings = [c for c in root.iter(f"{SVG}circle") if c.get("fill") == "none"]
    assert len(rings) == 1  # the kept epoch
    assert "kept" in [t.text for t in root.iter(f"{SVG}text")]
    # the kept ring sits on epoch 2's accuracy point: same centre as one of the filled points
    filled = {(c.get("cx"), c.get("cy")) for c in root.iter(f"{SVG}circle") if c.get("fill") != "none"}
    assert (rings[0].get("cx"), rings[0].get("cy")) in filled


def test_training_svg_without_validation_loss_steps_or_curve():
    """A diverged epoch (no validation loss), an old metrics.json without steps, a run too short to log."""
    old = [{k: v for k, v in h.items() if k != "step"} for h in HISTORY]
    old[2]["validation"] = {"accuracy": None, "macro_f1": None, "loss": None}
    root = ET.fromstring(training_svg(_metrics(old, CURVE)))
    assert not [e for e in root.iter(f"{SVG}line") if e.get("stroke-dasharray")]
    assert len(root.findall(f".//{SVG}polyline")) == 3
    one = ET.fromstring(training_svg(_metrics(HISTORY[:1], CURVE[:1], best=1)))
    assert len(one.findall(f".//{SVG}polyline")) == 1  # a single point per score: dots, no lines
    assert "no training steps logged" in training_svg(_metrics(HISTORY[:1], [], best=1))


def test_a_long_run_gets_a_readable_number_of_epoch_ticks():
    history = [{"epoch": e, "step": 10 * e, "validation": {"accuracy": 0.5 + e / 400, "macro_f1": 0.5, "loss": 0.7}}
               for e in range(1, 101)]
    svg = training_svg(_metrics(history, [[10 * e, 0.7] for e in range(1, 101)], best=100))
    right = svg.split('<g transform="translate(440,0)">')[1]
    ticks = [t for t in ET.fromstring(f'<g xmlns="http://www.w3.org/2000/svg">{right.split("</g>")[0]}</g>').iter(f"{SVG}text")
             if t.get("y") == str(300 - 44 + 16)]
    assert 3 <= len(ticks) <= 8 and {t.text for t in ticks} <= {str(e) for e in range(1, 101)}
