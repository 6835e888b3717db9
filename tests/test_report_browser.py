"""The report page in a real headless browser (Chromium): every image loads, every link resolves, formulas render.

Slow (a browser and a few claims); CI's slow step installs Debian's chromium for it.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from solvable.proofs_checks.framework.cli import main

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")

# Appended to a copy of the page: the browser itself reports what loaded (the report needs no script).
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const anchors = [...document.querySelectorAll('a[href^="#"]')];
  const dangling = anchors.filter(a => !document.getElementById(a.getAttribute('href').slice(1)))
                          .map(a => a.getAttribute('href'));
  const maths = [...document.getElementsByTagName('math')];
  const flat = maths.filter(m => m.getBoundingClientRect().height <= 0).length;
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = 'PROBE images=' + imgs.length + ' broken=' + JSON.stringify(broken) + ' anchors=' +
    anchors.length + ' dangling=' + JSON.stringify(dangling) + ' maths=' + maths.length + ' flat=' + flat;
  document.body.appendChild(out);
});
</script>"""


def _browser() -> str | None:
    return next((b for b in map(shutil.which, BROWSERS) if b), None)


@pytest.mark.slow
def test_report_page_loads_in_a_real_browser(tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium here (CI's slow step installs Debian's chromium)")
    report = tmp_path / "report"
    claims = ["diagonal.potential_symbolic", "deep_linear.saxe_modes", "ufm.symbolic", "deep_linear.model_collapse"]
    args = ["verify", "--quick", "--no-progress", "--report", str(report)] + [f"--claim={c}" for c in claims]
    assert main(args) == 0
    page = (report / "index.html").read_text()
    for href in re.findall(r"(?:src|href)='([^'#][^']*)'", page):  # files the page points at
        assert (report / href).is_file(), f"{href} is missing"
    probe = report / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                          "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r"PROBE images=(\d+) broken=(\[.*?\]) anchors=(\d+) dangling=(\[.*?\]) maths=(\d+) flat=(\d+)",
                      dom)
    assert found, "the page did not finish loading in the browser"
    images, broken, anchors, dangling, maths, flat = found.groups()
    assert int(images) == len(claims) and broken == "[]", f"images that did not load: {broken}"
    assert int(anchors) == len(claims) and dangling == "[]", f"links to missing sections: {dangling}"
    assert int(maths) == len(claims) and flat == "0", "every formula renders as MathML with a height"
