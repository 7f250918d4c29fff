"""The docs site, built offline by tools/docs.py (Sphinx + myst-nb) and looked at in a real browser.

Builds index + 00b_taxonomy + 05_benchmark (executed; or the executed copies in $BIOVITA_DOCS_FROM_RUNS)
into a temporary folder, serves it with `python -m http.server`, and has headless Chromium (Debian's
`chromium`) screenshot the index, benchmark and search pages, dump the benchmark page's DOM, and run
Sphinx's search. Without /usr/bin/chromium the browser tests skip, unless BIOVITA_REQUIRE_BROWSER=1
(then they fail).
"""
import base64, importlib.util, io, os, re, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from bs4 import BeautifulSoup
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SUBSET = "00b_taxonomy,05_benchmark"   # and index, always
SHOTS = Path(os.environ.get("BIOVITA_DOCS_SHOTS", ROOT / "_site_shots"))   # screenshots kept for a look


def _load_tool():
    spec = importlib.util.spec_from_file_location("docs_tool", ROOT / "tools" / "docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


docs = _load_tool()


def _public_symbols() -> set[str]:
    from biovita_nb._modidx import d
    return {k for syms in d["syms"].values() for k in syms if not k.rsplit(".", 1)[-1].startswith("_")}


# ---- naming and processing: what nbdev's links into the site rely on (fast, no browser)

def test_page_names_and_anchors_follow_nbdev():
    assert docs.page_name("05_benchmark.ipynb") == "benchmark.html"
    assert docs.page_name("01a_toyworld.ipynb") == "toyworld.html"
    assert docs.page_name("index.ipynb") == "index.html" and docs.page_name("own_model.ipynb") == "own_model.html"
    assert docs.pandoc_id("BenchmarkResult.skips") == "benchmarkresult.skips"
    assert docs.pandoc_id("Results on the synthetic world") == "results-on-the-synthetic-world"
    assert docs.pandoc_id("6 directions x 3 levels") == "directions-x-3-levels"
    from biovita_nb._modidx import d   # every page _modidx links to is the page of a notebook in nbs/
    linked = {v[0].split("#")[0] for syms in d["syms"].values() for v in syms.values()}
    assert linked <= {docs.page_name(p.name) for p in docs.notebook_order()}


def test_every_notebook_gets_a_page_index_first():
    order = docs.notebook_order()
    assert order[0].name == "index.ipynb" and set(order) == {p for p in (ROOT / "nbs").glob("*.ipynb")}
    first = [p.stem for p in order if p.stem in docs.NAV_FIRST]
    assert first == [s for s in docs.NAV_FIRST if (ROOT / "nbs" / f"{s}.ipynb").exists()]


def test_quarto_cell_options_become_myst_nb_tags():
    fix = docs.link_fixer("https://x.io/site", "https://github.com/o/r", {"benchmark.html"}, set())
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": "#| echo: false\n#| output: asis\nshow_doc(f)"}
    out = docs.cell_for_myst(cell, fix)
    assert out["source"] == "show_doc(f)" and out["metadata"]["tags"] == ["remove-input"]
    fold = docs.cell_for_myst({**cell, "source": '#| code-fold: show\n#| code-summary: "Exported source"\ndef f(): pass'}, fix)
    assert fold["source"] == "def f(): pass" and fold["metadata"]["tags"] == ["hide-input"]
    assert docs.cell_for_myst({**cell, "source": "#| include: false\nx = 1"}, fix)["metadata"]["tags"] == ["remove-cell"]
    md = "[a](https://x.io/site/benchmark.html#t){target=\"_blank\"} [b](05_benchmark.ipynb) [c](09_cli.ipynb) [d](settings.ini)"
    assert fix(md) == ("[a](benchmark.html#t) [b](benchmark.html) c "   # a page left out of the build: plain text
                       "[d](https://github.com/o/r/blob/main/settings.ini)")


def test_notebooks_keep_imports_in_their_own_cells():
    "nbdev's docs processing (nbdev_docs, and tools/docs.py) runs every cell holding an import, alone: one that also does other work fails there or runs slow code."
    mixed = [m for p in docs.notebook_order() for m in docs.mixed_import_cells(p)]
    assert not mixed, "split these cells (imports in a cell of their own):\n" + "\n".join(mixed)


def test_select_rejects_unknown_notebooks():
    nbs = docs.notebook_order()
    assert [p.stem for p in docs.select(nbs, "benchmark,index")] == ["index", "05_benchmark"]
    assert [p.stem for p in docs.select(nbs, "00b_taxonomy")] == ["index", "00b_taxonomy"]   # home page always
    with pytest.raises(SystemExit, match="no notebook"): docs.select(nbs, "index,no_such_nb")


# ---- the built site in a browser

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    out, t = tmp / "_site", time.time()
    runs = os.environ.get("BIOVITA_DOCS_FROM_RUNS")   # notebooks already executed (e.g. by `biovita reproduce`)
    source = ["--from-runs", runs] if runs else ["--execute", "--runs", str(tmp / "runs")]
    r = subprocess.run([sys.executable, "tools/docs.py", "--out", str(out), *source, "--only", SUBSET],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"build failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    print(f"docs subset built in {time.time() - t:.0f}s:\n{r.stdout}")
    return out


@pytest.fixture(scope="module")
def server(site):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
                             "--directory", str(site)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try: urllib.request.urlopen(base + "index.html", timeout=1).close(); break
            except OSError: time.sleep(0.1)
        else: pytest.fail("http.server did not start")
        yield base
    finally:
        proc.terminate(); proc.wait(timeout=10)


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        if os.environ.get("BIOVITA_REQUIRE_BROWSER") == "1": pytest.fail(f"{CHROMIUM} missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); set BIOVITA_REQUIRE_BROWSER=1 to fail instead")
    return CHROMIUM


def _browse(chromium, *args, timeout=120) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium_") as profile:
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            f"--user-data-dir={profile}", "--window-size=1280,2000", "--virtual-time-budget=15000",
                            *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp: return resp.status, resp.read()


@pytest.mark.parametrize("page", ["index.html", "benchmark.html", "search.html?q=bioclip_text"])
def test_screenshot_is_not_blank(chromium, server, page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    png = SHOTS / (page.split(".html")[0] + ".png")
    png.unlink(missing_ok=True)
    _browse(chromium, f"--screenshot={png}", server + page)
    assert png.is_file()
    img = Image.open(png).convert("RGB")
    assert img.size == (1280, 2000)
    lo, hi = zip(*img.getextrema())
    assert max(hi) - min(lo) > 100, f"{png} is a single colour"
    text = sum(img.crop((300, 100, 1000, 1000)).convert("L").histogram()[:200])   # pixels darker than the page
    assert text / (700 * 900) > 0.01, f"{png}: the content column is (nearly) empty"


def test_benchmark_page_shows_figures_table_and_navigation(chromium, server):
    dom = BeautifulSoup(_browse(chromium, "--dump-dom", server + "benchmark.html"), "html.parser")
    assert dom.select_one("main h1").get_text(strip=True).rstrip("#") == "The main job: the paper's tables on the benchmark"
    figures = [img for img in dom.select("main img") if img.get("src")]
    assert len(figures) >= 2, f"expected the benchmark figures, found {len(figures)} images"
    for img in figures:
        src = img["src"]
        if src.startswith("data:image/png;base64,"):
            Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
        else:
            status, body = _get(urljoin(server + "benchmark.html", src))
            assert status == 200 and body
            Image.open(io.BytesIO(body)).verify()
    # the species-level results table of the main job, rendered as an html table with model rows
    tables = [t for t in dom.select("main table") if "A->T" in t.get_text() or "A→T" in t.get_text()]
    assert tables, "no results table with the retrieval directions"
    assert any("BioVITA stage 2" in t.get_text() for t in tables)
    # navigation: every built page is in the sidebar, the current one marked
    nav = dom.select_one("nav.bd-docs-nav")
    assert {"index.html", "taxonomy.html", "api.html"} <= {a["href"] for a in nav.select("a")}
    assert nav.select_one("li.current > a").get_text(strip=True) == "The main job: the paper's tables on the benchmark"
    leaked = dom.find(string=re.compile(r"(?m)^\s*#\|\s*[\w-]+"))   # a directive line (progress bars hold "##|")
    assert not leaked, f"a quarto/nbdev directive leaked into the page: {leaked!r}"


def test_search_finds_an_exported_symbol(chromium, server):
    dom = BeautifulSoup(_browse(chromium, "--dump-dom", server + "search.html?q=bioclip_text"), "html.parser")
    hits = [a["href"] for a in dom.select("#search-results li a[href]")]
    assert "api.html#biovita_nb.taxonomy.bioclip_text" in hits, hits[:10]
    assert any(h.startswith("taxonomy.html") for h in hits), hits[:10]   # and the notebook page that shows it


def test_every_internal_link_resolves(server, site):
    pages = sorted(p.name for p in site.glob("*.html"))
    assert {"index.html", "taxonomy.html", "benchmark.html", "api.html", "search.html"} <= set(pages)
    checked = set()
    for page in pages:
        status, body = _get(server + page)
        assert status == 200
        for tag in BeautifulSoup(body, "html.parser").find_all(["a", "img", "link", "script", "source"]):
            url = tag.get("href") or tag.get("src")
            if not url or urlsplit(url).scheme or url.startswith(("#", "//")): continue
            target = urljoin(server + page, urlsplit(url).path)
            if target in checked: continue
            assert _get(target)[0] == 200, f"{page}: {url}"
            checked.add(target)
    assert len(checked) >= 5
    assert docs.check_site(site) == []   # anchors too: every #fragment names an id on its page
    taxonomy = BeautifulSoup((site / "taxonomy.html").read_text(), "html.parser")
    assert taxonomy.find(id="bioclip_text") and taxonomy.find(id="taxonomy.from_frame"), "quarto's anchors missing"


def test_api_reference_lists_every_exported_symbol(site):
    api = BeautifulSoup((site / "api.html").read_text(), "html.parser")
    listed = {dt.get("id") for dt in api.select("dl.py > dt")}
    missing = _public_symbols() - listed
    assert not missing, sorted(missing)[:10]
    assert "taxonomy.html" in {a.get("href") for a in api.select("main a")}   # each module links to its page
