import xml.etree.ElementTree as ET

from lightft.plots import comparison_svg

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
