"""The leaderboard page, as served to a browser: loaded in headless Chromium.

The DOM Chromium builds (after the inline script ran) must hold the ranked tables, the paper
tables, the reproduction section, the embedded figures and the run links; a screenshot must
render. Skipped with the reason when Chromium is not installed.
"""

from __future__ import annotations

import html.parser
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("chromium not found: apt-get install chromium")


def _run_chromium(run_in_own_group, args: list[str], profile: Path) -> str:
    code, out = run_in_own_group(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], 60.0,
        stderr=subprocess.DEVNULL)
    assert code == 0, f"chromium failed with exit code {code}"
    return out


class _Tables(html.parser.HTMLParser):
    """Collects, per table id, the text of each body row's cells, and body classes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.images = 0
        self.links: list[str] = []
        self.body_classes: list[str] = []
        self._table: str | None = None
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "body":
            self.body_classes = (attributes.get("class") or "").split()
        elif tag == "table":
            self._table = attributes.get("id") or ""
            self.rows[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows[self._table].append([])
        elif tag == "td" and self._in_body:
            self._cell = []
        elif tag == "img":
            self.images += attributes.get("src", "").startswith("data:image/png;base64,")
        elif tag == "a":
            self.links.append(attributes.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[self._table][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def dom(report_dir: Path, tmp_path_factory: pytest.TempPathFactory, run_in_own_group
        ) -> _Tables:
    page = (report_dir / "index.html").as_uri()
    text = _run_chromium(run_in_own_group, ["--dump-dom", page],
                         tmp_path_factory.mktemp("chromium"))
    parsed = _Tables()
    parsed.feed(text)
    return parsed


def test_script_ran(dom: _Tables) -> None:
    assert "sortable-ready" in dom.body_classes


def test_leaderboard_ranked_by_accuracy(dom: _Tables) -> None:
    mnist = dom.rows["leaderboard-0"]
    assert [row[1] for row in mnist] == [
        "sefl (protocol fourier)", "cnn (protocol sesn)", "dss_scalar (protocol fourier)",
        "sicnn (protocol fourier)", "cnn (protocol fourier)"]
    assert mnist[0][:10] == ["1", "sefl (protocol fourier)", "98.00 ± 1.00", "3",
                             "5e-07 ± 2.5e-07", "2e-06 ± 1e-06", "97.00 ± 1.00", "100,000",
                             "500", "2000"]
    assert [row[1] for row in dom.rows["leaderboard-1"]] == ["wrn_16_8"]
    assert [row[1] for row in dom.rows["leaderboard-2"]] == ["sefl", "cnn1d"]


def test_paper_tables_and_sections(dom: _Tables) -> None:
    assert len(dom.rows["table-0"]) == 11  # MNIST-scale, published-only rows included
    assert dom.rows["table-0"][0][:5] == ["cnn", "fourier", "494,549", "2", "95.50 ± 0.71"]
    assert len(dom.rows["reproduction"]) == 12
    assert [len(dom.rows[f"problems-{i}"]) for i in range(3)] == [2, 1, 0]


def test_figures_embedded_and_runs_linked(dom: _Tables) -> None:
    assert dom.images == 16
    runs = [link for link in dom.links if link.startswith("http://127.0.0.1:5000/#/experiments/")]
    # Every run behind a leaderboard row: 9 MNIST-scale (n_train 10000), 2 STL, 2 1D.
    assert len(runs) == 13


def test_screenshot(report_dir: Path, tmp_path: Path, run_in_own_group) -> None:
    shot = tmp_path / "shot.png"
    _run_chromium(run_in_own_group, [f"--screenshot={shot}", "--window-size=1280,2000",
                   (report_dir / "index.html").as_uri()], tmp_path / "profile")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_clicking_headers_sorts(report_dir: Path, tmp_path: Path, run_in_own_group) -> None:
    # Click "Accuracy (%)" of the MNIST-scale table once (ascending) and "Params" of its
    # leaderboard twice (descending); missing values stay last either way.
    clicks = ("<script>document.querySelector('#table-0 th:nth-child(5)').click();"
              "const p = document.querySelector('#leaderboard-0 th:nth-child(8)');"
              "p.click(); p.click();</script></body>")
    page = tmp_path / "clicked.html"
    page.write_text((report_dir / "index.html").read_text().replace("</body>", clicks))
    parsed = _Tables()
    parsed.feed(_run_chromium(run_in_own_group, ["--dump-dom", page.as_uri()],
                              tmp_path / "profile"))
    assert [(r[0], r[4]) for r in parsed.rows["table-0"]] == [
        ("cnn", "95.50 ± 0.71"), ("cnn", "97.00"), ("dss_scalar", "97.00"),
        ("sicnn", "97.00 ± 1.41"), ("sefl", "98.00 ± 1.00"), ("disco", "missing"),
        ("fourier_cnn", "missing"), ("per_res_cnn", "missing"), ("sesn", "missing"),
        ("si_convnet", "missing"), ("ss_cnn", "missing")]
    assert [r[7] for r in parsed.rows["leaderboard-0"]] == [
        "496,639", "494,549", "494,549", "494,359", "100,000"]
