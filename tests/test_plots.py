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
