"""report.html renders in a real browser (headless Chromium): ctest label `browser`.

UNDERSPEC_SKIP_BROWSER_TESTS=1 skips them (e.g. where Chromium cannot run); otherwise a
missing or failing Chromium fails them with its message.
"""

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import browser
from underspec import report

pytestmark = pytest.mark.skipif(os.environ.get("UNDERSPEC_SKIP_BROWSER_TESTS") == "1",
                                reason="UNDERSPEC_SKIP_BROWSER_TESTS=1")

ALL_FIGURES = ["seeds", "iid_vs_ood", "weights", "stress", "grid_spread"]


class Dom(HTMLParser):
    """Figures (id -> number of SVG shapes inside) and every src/href of the rendered DOM."""

    def __init__(self):
        super().__init__()
        self.figures, self.refs, self._stack = {}, [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href", "xlink:href"):
            if a.get(k) is not None:
                self.refs.append(a[k])
        if tag == "figure" and "figure" in (a.get("class") or "").split():
            self._stack.append(a.get("id"))
            self.figures[a.get("id")] = 0
        elif tag in ("path", "use", "rect", "line", "polyline", "text") and self._stack:
            self.figures[self._stack[-1]] += 1

    def handle_endtag(self, tag):
        if tag == "figure" and self._stack:
            self._stack.pop()


@pytest.fixture(scope="module")
def rendered(small_run, tmp_path_factory):
    import shutil

    d = tmp_path_factory.mktemp("browser") / "run"
    shutil.copytree(small_run, d)
    html_path = report.write_report(d)
    png = d / "report.png"
    try:
        browser.screenshot(html_path, png)
        dom, log = browser.dump_dom(html_path)
    except RuntimeError as e:
        pytest.fail(f"headless Chromium failed: {e}\n(set UNDERSPEC_SKIP_BROWSER_TESTS=1 to skip the browser tests)")
    return d, html_path, png, dom, log


def test_screenshot_is_not_blank(rendered):
    from PIL import Image

    _, _, png, _, _ = rendered
    img = Image.open(png).convert("RGB")
    assert img.size == (1200, 3000)
    colors = img.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, "the page rendered in too few colours"
    white = sum(n for n, c in colors if c == (255, 255, 255))
    assert white < 0.97 * img.size[0] * img.size[1], "the page is (almost) all white"
    # Plot colours (the regimes' red, blue and green) made it to the screen.
    def near(target):
        return sum(n for n, c in colors if sum(abs(x - y) for x, y in zip(c, target)) < 40)
    for rgb in [(0xd6, 0x27, 0x28), (0x1f, 0x77, 0xb4), (0x2c, 0xa0, 0x2c)]:
        assert near(rgb) > 50, f"colour {rgb} missing from the screenshot"


def test_every_figure_is_in_the_dom(rendered):
    _, _, _, dom, _ = rendered
    parsed = Dom()
    parsed.feed(dom)
    for name in ALL_FIGURES:
        assert parsed.figures.get(f"fig-{name}", 0) > 20, f"figure {name} missing or empty in the rendered DOM"


def test_self_contained(rendered):
    d, html_path, _, dom, log = rendered
    parsed = Dom()
    parsed.feed(dom)
    for ref in parsed.refs:
        assert not re.match(r"(?i)(https?:)?//", ref), f"external resource {ref}"
        if ref.startswith("#") or ref.startswith("data:"):
            continue
        assert (Path(html_path).parent / ref).exists(), f"missing resource {ref}"
    assert "ERR_FILE_NOT_FOUND" not in log and "Failed to load resource" not in log
