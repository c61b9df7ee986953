"""report.html / compare.html: the Markdown report as one self-contained page, its SVG plots inline."""

from html.parser import HTMLParser

import lightft
from lightft.html_report import markdown_to_html


class Tags(HTMLParser):
    """Counts tags and checks they nest (void tags aside)."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.open, self.seen, self.text = [], {}, []

    def handle_starttag(self, tag, attrs):
        self.seen[tag] = self.seen.get(tag, 0) + 1
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.seen[tag] = self.seen.get(tag, 0) + 1

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    tags.close()
    assert not tags.open, tags.open
    return tags


def test_markdown_subset_renders_and_escapes(tmp_path):
    (tmp_path / "p.svg").write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>')
    page = markdown_to_html("# Title <x>\n\nSome `a<b>` and **bold** [link](https://e.x).\n\n| a | b |\n|---|---|\n"
                            "| 1 | `2` |\n\n- one\n- two\n\n```\ncode <here>\n```\n\n![plot](p.svg)\n\n![gone](none.svg)",
                            title="t", folder=tmp_path)
    tags = parse(page)
    assert tags.seen["h1"] == 1 and tags.seen["table"] == 1 and tags.seen["td"] == 2 and tags.seen["li"] == 2
    assert "<code>a&lt;b&gt;</code>" in page and "Title &lt;x&gt;" in page and "code &lt;here&gt;" in page
    assert "<strong>bold</strong>" in page and '<a href="https://e.x">link</a>' in page
    assert tags.seen["svg"] == 1 and "<?xml" not in page and '<img src="none.svg"' in page


def test_a_run_and_a_comparison_write_their_html_pages(fast, tmp_path):
    run = lightft.train(**fast)
    page = (run.path / "report.html").read_text()
    tags = parse(page)
    assert tags.seen["svg"] >= 1 and tags.seen["table"] >= 4  # training.svg inline; results, cost, classes, history
    assert "Test results" in page and "```" not in page and "![" not in page
    comparison = lightft.compare("baseline,head", **{**fast, "output": str(tmp_path / "cmp")})
    page = (comparison.path / "compare.html").read_text()
    assert parse(page).seen["svg"] >= 1 and "baseline" in page


def test_a_label_with_a_pipe_stays_in_its_cell():
    from lightft.report import markdown_table

    table = markdown_table(["class", "F1"], [["x|y", "50%"], ["a\nb", "1"]])
    assert table.splitlines()[2] == "| x\\|y | 50% |" and "| a b | 1 |" in table
    tags = parse(markdown_to_html(table, title="t"))
    page = markdown_to_html(table, title="t")
    assert tags.seen["td"] == 4 and "<td>x|y</td><td>50%</td>" in page
