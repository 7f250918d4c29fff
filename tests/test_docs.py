"""The docs site, built offline by tools/build_docs.py and looked at in a real browser.

Builds index + 00b_taxonomy + 05_benchmark (executed) into a temporary folder, serves it with
`python -m http.server`, and has headless Chromium (Debian's `chromium`) screenshot the index and
benchmark pages and dump the benchmark page's DOM. Without /usr/bin/chromium the browser tests
skip, unless BIOVITA_REQUIRE_BROWSER=1 (then they fail).
"""
import base64, importlib.util, io, os, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from bs4 import BeautifulSoup
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SUBSET = "index,00b_taxonomy,05_benchmark"
SHOTS = Path(os.environ.get("BIOVITA_DOCS_SHOTS", ROOT / "_site_shots"))   # screenshots kept for a look


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "tools" / "build_docs.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod   # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


bd = _load_builder()


# ---- naming and processing: what nbdev's links into the site rely on (fast, no browser)

def test_page_names_and_anchors_follow_nbdev():
    assert bd.page_name("05_benchmark.ipynb") == "benchmark.html"
    assert bd.page_name("01a_toyworld.ipynb") == "toyworld.html"
    assert bd.page_name("index.ipynb") == "index.html"
    assert bd.pandoc_id("BenchmarkResult.skips") == "benchmarkresult.skips"
    assert bd.pandoc_id("Results on the synthetic world") == "results-on-the-synthetic-world"
    assert bd.pandoc_id("6 directions x 3 levels") == "directions-x-3-levels"
    # every page _modidx links to is the page of a notebook in nbs/
    from biovita_nb._modidx import d
    linked = {v[0].split("#")[0] for syms in d["syms"].values() for v in syms.values()}
    assert linked <= {bd.page_name(p.name) for p in bd.notebook_order()}


def test_quarto_cell_options_become_nbconvert_tags():
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": "#| echo: false\n#| output: asis\nshow_doc(f)"}
    out = bd._to_nbformat_cell(cell)
    assert out["source"] == "show_doc(f)" and "remove_input" in out["metadata"]["tags"]
    fold = bd._to_nbformat_cell({**cell, "source": '#| code-fold: show\n#| code-summary: "Exported source"\ndef f(): pass'})
    assert fold["source"] == "def f(): pass" and fold["metadata"]["tags"] == ["fold_open"]
    assert "remove_cell" in bd._to_nbformat_cell({**cell, "source": "#| include: false\nx = 1"})["metadata"]["tags"]


def test_notebooks_keep_imports_in_their_own_cells():
    "nbdev's docs processing (nbdev_docs, and build_docs) runs every cell holding an import, alone: one that also does other work fails there or runs slow code."
    mixed = [m for p in bd.notebook_order() for m in bd.mixed_import_cells(p)]
    assert not mixed, "split these cells (imports in a cell of their own):\n" + "\n".join(mixed)


def test_select_rejects_unknown_notebooks():
    nbs = bd.notebook_order()
    assert [p.stem for p in bd.select(nbs, "benchmark,index")] == ["index", "05_benchmark"]
    assert [p.stem for p in bd.select(nbs, "00b_taxonomy")] == ["index", "00b_taxonomy"]   # home page always
    with pytest.raises(SystemExit, match="no notebook"): bd.select(nbs, "index,no_such_nb")


# ---- the built site in a browser

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "_site"
    t = time.time()
    runs = os.environ.get("BIOVITA_DOCS_FROM_RUNS")   # notebooks already executed (e.g. by `biovita reproduce`)
    source = ["--from-runs", runs] if runs else ["--execute"]
    r = subprocess.run([sys.executable, "tools/build_docs.py", "--out", str(out), *source, "--only", SUBSET],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"build failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
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


@pytest.mark.parametrize("page", ["index.html", "benchmark.html"])
def test_screenshot_is_not_blank(chromium, server, page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    png = SHOTS / page.replace(".html", ".png")
    png.unlink(missing_ok=True)
    _browse(chromium, f"--screenshot={png}", server + page)
    assert png.is_file()
    img = Image.open(png).convert("RGB")
    assert img.size == (1280, 2000)
    lo, hi = zip(*img.getextrema())
    assert max(hi) - min(lo) > 100, f"{png} is a single colour"
    text = sum(img.crop((300, 200, 980, 2000)).convert("L").histogram()[:200])   # pixels darker than the page
    assert text / (680 * 1800) > 0.02, f"{png}: the content column is (nearly) empty"   # rendered pages: ~9%


def test_benchmark_page_shows_figures_table_and_navigation(chromium, server):
    dom = BeautifulSoup(_browse(chromium, "--dump-dom", server + "benchmark.html"), "html.parser")
    assert dom.find("h1").get_text(strip=True) == "The main job: the paper's tables on the benchmark"
    figures = [img for img in dom.select("main img") if img.get("src")]
    assert len(figures) >= 2, f"expected the benchmark figures, found {len(figures)} images"
    for img in figures:
        src = img["src"]
        if src.startswith("data:image/png;base64,"):
            Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
        else:
            status, body = _get(urljoin(server + "benchmark.html", src))
            assert status == 200 and body
    # the species-level results table of the main job, rendered as an html table with model rows
    tables = [t for t in dom.select("main table") if "A->T" in t.get_text() or "A→T" in t.get_text()]
    assert tables, "no results table with the retrieval directions"
    assert any("BioVITA stage 2" in t.get_text() for t in tables)
    # navigation: every built page is in the sidebar, the current one marked
    nav = {a["href"] for a in dom.select("nav.sidebar a")}
    assert {"index.html", "taxonomy.html", "benchmark.html", "api.html"} <= nav
    assert dom.select_one("nav.sidebar li.active a")["href"] == "benchmark.html"
    assert not dom.find(string=lambda s: "#| " in s), "a quarto/nbdev directive leaked into the page"


def test_every_internal_link_resolves(server, site):
    pages = sorted(p.relative_to(site).as_posix() for p in site.glob("*.html"))
    assert {"index.html", "taxonomy.html", "benchmark.html", "api.html"} <= set(pages)
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
    assert bd.check_site(site) == []   # anchors too: every #fragment names an id on its page


def test_api_reference_lists_every_exported_symbol(site):
    from biovita_nb._modidx import d
    api = BeautifulSoup((site / "api.html").read_text(), "html.parser")
    listed = {td.get_text(strip=True) for td in api.select("table.api td.name")}
    public = {k.split(".", 2)[2] for syms in d["syms"].values() for k in syms
              if not k.rsplit(".", 1)[-1].startswith("_")}
    assert public <= listed, sorted(public - listed)[:10]
    link = api.select_one('td.name a[href^="taxonomy.html#bioclip_text"]')   # a page in the subset: linked
    assert link is not None and link.get_text() == "bioclip_text"
