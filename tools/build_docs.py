"""Build the documentation site offline, without quarto: the same pages `nbdev_docs` makes.

    python tools/build_docs.py --out _site --execute                # run every notebook, then render
    python tools/build_docs.py --out _site --from-runs _runs        # render notebooks run elsewhere
    python tools/build_docs.py --out _site --execute --only index,05_benchmark
    python -m http.server --directory _site 8000                    # then open http://127.0.0.1:8000

Each notebook goes through nbdev's own docs processing (`nbdev.processors.FilterDefaults`, what
`nbdev_proc_nbs` applies before quarto: frontmatter from the title cell, `show_doc` for every
exported symbol, `#| hide` / `#| export` removal, nbdev's symbol links; one change, see
`docs_filter`), then nbconvert's HTMLExporter renders it with its outputs (figures as data URIs;
quarto's `#| echo: false`, `output`, `include`, `code-fold` honoured). Around it: a sidebar with the
notebooks in `nbs/sidebar.yml` order (titles from the title cells), a table of contents,
`index.html` from `nbs/index.ipynb` (the README), and `api.html`, one row per exported symbol
(signature, first docstring line, link to its `show_doc` anchor). Page names and anchors follow
nbdev/quarto (`05_benchmark.ipynb` -> `benchmark.html`, `### Foo.bar` -> `#foo.bar`), so the links
nbdev writes into the notebooks resolve inside this site. Every internal href/src is checked
after the build; a broken one makes the build fail.

Math uses MathJax: copied into the site from Debian's `libjs-mathjax` when it is installed (the
site then works offline), else loaded from the CDN (`--mathjax-url`).
"""
from __future__ import annotations

import argparse, html, importlib, inspect, os, re, shutil, subprocess, sys, tempfile, time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
CDN_MATHJAX = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
DEBIAN_MATHJAX = Path("/usr/share/javascript/mathjax")

# ----------------------------------------------------------------------------------------------
# Which notebooks, in which order, under which page names


def page_name(nb_name: str) -> str:
    "nbdev's page name for a notebook: `05_benchmark.ipynb` -> `benchmark.html` (as in _modidx)."
    from nbdev.doclinks import _nbpath2html
    return _nbpath2html(Path(nb_name)).name


def notebook_order(nbs: Path = NBS) -> list[Path]:
    "The notebooks of `nbs/sidebar.yml` in its order, else every notebook, index first (nbdev's order)."
    import yaml
    found = {p.name: p for p in nbs.glob("*.ipynb") if not p.name.startswith(("_", "."))}
    order: list[str] = []
    sidebar = nbs / "sidebar.yml"
    if sidebar.exists():
        def walk(items):
            for it in items:
                if isinstance(it, str): order.append(Path(it).name)
                elif isinstance(it, dict):
                    if "href" in it: order.append(Path(it["href"]).name)
                    walk(it.get("contents", []))
        walk(yaml.safe_load(sidebar.read_text())["website"]["sidebar"]["contents"])
    missing = sorted(set(found) - set(order), key=lambda n: ("" if n == "index.ipynb" else n))
    order = [n for n in order if n in found] + missing   # a notebook not in sidebar.yml still gets a page
    return [found[n] for n in order]


def select(nbs: list[Path], only: str | None) -> list[Path]:
    "Filter by `--only` (comma-separated notebook stems or page names; index, the home page, always); unknown names are an error."
    if not only: return nbs
    keys = {p.stem: p for p in nbs} | {page_name(p.name).removesuffix(".html"): p for p in nbs}
    wanted = [w.strip() for w in only.split(",") if w.strip()] + (["index"] if "index" in keys else [])
    unknown = [w for w in wanted if w.removesuffix(".ipynb") not in keys]
    if unknown: sys.exit(f"--only: no notebook {unknown} in nbs/ (have: {', '.join(p.stem for p in nbs)})")
    chosen = {keys[w.removesuffix('.ipynb')] for w in wanted}
    return [p for p in nbs if p in chosen]


# ----------------------------------------------------------------------------------------------
# Executing notebooks (papermill or execnb), skipping cells flagged as nbdev_test skips them

def execute(src: Path, dst: Path, engine: str = "papermill", run_flags=frozenset(), timeout: int = 1200) -> None:
    "Run notebook `src` with cwd nbs/ (as nbdev_test does) and write it with outputs to `dst`."
    import nbformat
    from biovita_nb.pipeline import without_flagged
    nb, held = without_flagged(src, run_flags)   # cells flagged slow/gpu/hub are shown but not run (like nbdev_test)
    with tempfile.TemporaryDirectory(prefix="docs_exec_") as tmp:
        tmp_in = Path(tmp) / src.name
        nbformat.write(nb, tmp_in)
        if engine == "papermill":
            import papermill as pm
            pm.execute_notebook(str(tmp_in), str(dst), cwd=str(src.parent), kernel_name="python3",
                                progress_bar=False, log_output=False, execution_timeout=timeout)
        elif engine == "execnb":   # in a fresh process, as nbdev_test runs each notebook
            code = ("import sys; from execnb.nbio import read_nb, write_nb; from execnb.shell import CaptureShell\n"
                    "nb = read_nb(sys.argv[1]); CaptureShell().run_all(nb, exc_stop=True); write_nb(nb, sys.argv[2])")
            env = {**os.environ, "IN_TEST": "1"}
            r = subprocess.run([sys.executable, "-c", code, str(tmp_in), str(dst)], cwd=src.parent, env=env,
                               capture_output=True, text=True, timeout=timeout)
            if r.returncode: raise RuntimeError(f"execnb failed on {src.name}:\n{r.stderr[-4000:]}")
        else: raise ValueError(f"engine must be papermill or execnb, not {engine!r}")
    out = nbformat.read(dst, as_version=4)
    for c in out.cells:
        if c.get("id") in held: c.source, c.outputs = held[c.id], []
    nbformat.write(out, dst)


def _is_mixed(cell) -> bool:
    "A cell nbdev's docs processing runs because it imports, which also does other work (nbdev's warning)."
    import ast, warnings
    from nbdev.processors import _ast_contains, _do_eval
    if cell.cell_type != "code" or cell.directives_.keys() & {"export", "exports", "exporti"}: return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # nbdev warns "Found cells containing imports and other code"
        try: trees = cell.parsed_() if _do_eval(cell) else None
        except SyntaxError: return False
    return bool(trees) and _ast_contains(trees, (ast.Import, ast.ImportFrom)) and _ast_contains(trees, (ast.Expr, ast.Assign))


def mixed_import_cells(nb_path: Path) -> list[str]:
    """Cells that mix imports with other code. nbdev's docs processing runs them alone (without the notebook's
    earlier cells), so in `nbdev_docs` they fail or run slow work; keep imports in cells of their own."""
    from execnb.nbio import read_nb
    from nbdev.process import NBProcessor
    nb = read_nb(nb_path)
    NBProcessor(nb=nb, procs=[])   # parses each cell's directives
    return [f"{nb_path.name} cell {i}: {c.source.splitlines()[0][:70]!r}" for i, c in enumerate(nb.cells) if _is_mixed(c)]


def docs_filter():
    """nbdev's `FilterDefaults` (the processors `nbdev_proc_nbs` applies), with one change: of a cell that mixes
    imports and other code, `exec_show_docs` runs only the imports (nbdev runs all of it, alone, and fails on a
    name an earlier cell defined). Such cells are reported, since `nbdev_docs` needs them split."""
    import ast
    from nbdev.processors import FilterDefaults, exec_show_docs

    class exec_show_docs_imports_only(exec_show_docs):
        def __call__(self, cell):
            if not _is_mixed(cell): return super().__call__(cell)
            if not self.nb.has_docs_ or not hasattr(self, "k"): return
            self.k.run("\n".join(ast.unparse(t) for t in cell.parsed_() if isinstance(t, (ast.Import, ast.ImportFrom))))
            if self.k.exc: raise Exception(f"Error in the imports of cell {cell.idx_}:\n{cell.source}") from self.k.exc

    class DocsFilter(FilterDefaults):
        def base_procs(self):
            return [exec_show_docs_imports_only if p is exec_show_docs else p for p in super().base_procs()]
    return DocsFilter()


# ----------------------------------------------------------------------------------------------
# nbdev's processing, then quarto's cell options mapped onto nbconvert


@dataclass
class Page:
    nb_path: Path                 # the notebook in nbs/
    source: Path                  # the notebook rendered (executed copy or nbs/ itself)
    executed: bool
    name: str = ""                # page file name, e.g. benchmark.html
    title: str = ""
    description: str = ""
    nb: object = None             # the processed notebook (nbformat node)
    soup: object = None           # its rendered cells (BeautifulSoup), then html and toc
    html: str = ""
    toc: str = ""
    notes: list = field(default_factory=list)


def process(page: Page) -> None:
    "nbdev's docs processors (what nbdev_proc_nbs runs for quarto) on the notebook, in place."
    import nbformat, yaml
    from execnb.nbio import read_nb
    nb = read_nb(page.source)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    cwd, in_test = os.getcwd(), os.environ.get("IN_TEST")
    os.environ["IN_TEST"] = "1"   # nbdev_proc_nbs sets it too
    try:
        os.chdir(page.nb_path.parent)
        docs_filter()(nb)
    finally:
        os.chdir(cwd)
        if in_test is None: os.environ.pop("IN_TEST", None)
    fm = dict(getattr(nb, "frontmatter_", {}) or {})
    cells = list(nb.cells)
    if cells and cells[0].cell_type == "raw" and cells[0].source.startswith("---"):
        fm = {**(yaml.safe_load(cells[0].source.strip().strip("-")) or {}), **fm}
        cells = cells[1:]
    page.title = fm.get("title") or page.nb_path.stem
    page.description = fm.get("description", "")
    page.name = fm.get("output-file") or page_name(page.nb_path.name)
    page.nb = nbformat.from_dict({"cells": [_to_nbformat_cell(c) for c in cells], "metadata": dict(nb.metadata),
                                  "nbformat": 4, "nbformat_minor": 5})


_re_qopt = re.compile(r"^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")
_re_pandoc_attr_link = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)\{([^}]*)\}")


def _to_nbformat_cell(c) -> dict:
    "A processed cell as a plain nbformat dict; quarto options (`#| echo: false` ...) become tags."
    d = {k: v for k, v in dict(c).items() if not k.endswith("_")}
    if isinstance(d.get("source"), list): d["source"] = "".join(d["source"])
    d["metadata"] = {k: v for k, v in dict(d.get("metadata", {})).items() if k in ("tags", "language")}
    tags = list(d["metadata"].get("tags", []))
    if d["cell_type"] == "code":
        lines, opts = d["source"].splitlines(), {}
        while lines and (m := _re_qopt.match(lines[0])):
            opts[m.group(1)] = m.group(2).strip("'\"")
            lines.pop(0)
        d["source"] = "\n".join(lines).strip("\n")
        if opts.get("include") == "false": tags.append("remove_cell")
        if opts.get("echo") == "false" or not d["source"]: tags.append("remove_input")
        if opts.get("output") == "false": tags.append("remove_output")
        if opts.get("code-fold") in ("true", "show"):
            tags.append("fold_open" if opts["code-fold"] == "show" else "fold")
        d.setdefault("outputs", [])
        d.setdefault("execution_count", None)
        for o in d["outputs"]:   # execnb keeps multi-line text as lists of lines; nbconvert wants strings
            if isinstance(o.get("text"), list): o["text"] = "".join(o["text"])
            data = o.get("data", {})
            for k, v in data.items():
                if isinstance(v, list): data[k] = "".join(v)
            if "text/markdown" in data:   # show_doc's `[source](url){target=...}` is pandoc syntax
                md = data["text/markdown"]
                data["text/markdown"] = _re_pandoc_attr_link.sub(
                    lambda m: f'<a href="{m.group(2)}" class="source-link">{m.group(1)}</a>', md)
    else:
        d.pop("outputs", None); d.pop("execution_count", None)
    d["metadata"]["tags"] = tags
    return d


def render_body(page: Page) -> tuple[str, str]:
    "nbconvert's lab template on the processed notebook: (css of the page head, html of the cells)."
    from bs4 import BeautifulSoup
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor
    from traitlets.config import Config
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {"remove_cell"}
    c.TagRemovePreprocessor.remove_input_tags = {"remove_input"}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {"remove_output"}
    exporter = HTMLExporter(config=c, template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(CoalesceStreamsPreprocessor, enabled=True)   # and progress bars' \r
    out, _ = exporter.from_notebook_node(page.nb)
    soup = BeautifulSoup(out, "html.parser")
    css = "\n".join(s.get_text() for s in soup.head.find_all("style"))
    main = soup.find("main") or soup.body
    return css, main.decode_contents()


# ----------------------------------------------------------------------------------------------
# Turning the cells' html into a page of the site


def pandoc_id(text: str) -> str:
    "Pandoc's (so quarto's) automatic heading identifier, which nbdev's doc links point at."
    s = re.sub(r"[^\w\s.-]", "", text.strip(), flags=re.UNICODE).lower()
    s = re.sub(r"\s+", "-", s)
    s = re.sub(r"^[^a-z]+", "", s)
    return s or "section"


def localize(soup, page: Page, pages: dict[str, Page], site_url: str, nb_links: dict[str, str]) -> None:
    """Give headings quarto's ids; point links at pages of this site (`.ipynb` -> `.html`, nbdev's absolute
    doc links -> relative); fold exported source; link `` `05_benchmark` `` mentions to their pages."""
    seen: dict[str, int] = {}
    for h in soup.find_all(re.compile("^h[1-6]$")):
        for a in h.find_all("a", class_="anchor-link"): a.decompose()
        base = pandoc_id(h.get_text(" "))
        n = seen.get(base, 0); seen[base] = n + 1
        h["id"] = base if n == 0 else f"{base}-{n}"
        a = soup.new_tag("a", href=f"#{h['id']}", **{"class": "anchor-link"}); a.string = "¶"
        h.append(a)
    for a in soup.find_all("a", href=True):
        href = a["href"]
        if site_url and href.startswith(site_url + "/"): href = href[len(site_url) + 1:]
        parts = urlsplit(href)
        if not parts.scheme and not href.startswith("#") and parts.path.endswith(".ipynb"):
            href = page_name(Path(unquote(parts.path)).name) + (f"#{parts.fragment}" if parts.fragment else "")
        a["href"] = href
        target = urlsplit(href).path
        if not urlsplit(href).scheme and target.endswith(".html") and "/" not in target and target not in pages:
            page.notes.append(f"link to {target} (not built) left as text")
            a.name = "span"; del a["href"]; a["class"] = a.get("class", []) + ["unbuilt-link"]
    for code in soup.find_all("code"):
        t = code.get_text()
        if t in nb_links and code.find_parent("a") is None and code.find_parent("pre") is None:
            a = soup.new_tag("a", href=nb_links[t]); code.wrap(a)
    for cell in soup.select(".celltag_fold, .celltag_fold_open"):
        inp = cell.select_one(".jp-Cell-inputWrapper")
        if inp is None: continue
        det = soup.new_tag("details", **({"open": ""} if "celltag_fold_open" in cell["class"] else {}))
        summ = soup.new_tag("summary"); summ.string = "Exported source"
        inp.wrap(det); det.insert(0, summ)


def fix_anchors(soup, page: Page, ids: dict[str, set[str]]) -> None:
    """Point a link at an anchor that no page has (nbdev links every method in _modidx, but only symbols
    given a `show_doc` have a heading) at its nearest documented parent (`taxon.at` -> `taxon`), else the page."""
    for a in soup.find_all("a", href=True):
        parts = urlsplit(a["href"])
        if parts.scheme or not parts.fragment: continue
        target = parts.path or page.name
        if target not in ids or parts.fragment in ids[target]: continue
        frag = parts.fragment
        while "." in frag and frag not in ids[target]: frag = frag.rsplit(".", 1)[0]
        new = parts.path + (f"#{frag}" if frag in ids[target] else "")
        a["href"] = new or page.name
        page.notes.append(f"no anchor #{parts.fragment} in {target}: linked {a['href']}")


def toc_html(soup) -> str:
    items = [f'<li class="toc-{h.name}"><a href="#{h["id"]}">{html.escape(h.get_text("").rstrip("¶ ").strip())}</a></li>'
             for h in soup.find_all(["h2", "h3"]) if h.get("id")]
    return f'<nav class="toc"><h2>On this page</h2><ul>{"".join(items)}</ul></nav>' if items else ""


SITE_CSS = """
:root { --nav-w: 17rem; --toc-w: 15rem; --accent: #2780e3; }
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #212529; background: #fff; line-height: 1.5; }
.site-header { position: sticky; top: 0; z-index: 10; background: var(--accent); color: #fff; display: flex;
               align-items: center; gap: 1.5rem; padding: .6rem 1.2rem; }
.site-header a { color: #fff; text-decoration: none; }
.site-header .brand { font-weight: 600; font-size: 1.15rem; }
.layout { display: grid; grid-template-columns: var(--nav-w) minmax(0, 1fr) var(--toc-w); gap: 1.5rem;
          max-width: 1500px; margin: 0 auto; }
nav.sidebar, nav.toc { position: sticky; top: 3.2rem; align-self: start; max-height: calc(100vh - 3.5rem);
                       overflow-y: auto; padding: 1rem .5rem; font-size: .9rem; }
nav.sidebar ul, nav.toc ul { list-style: none; padding-left: 0; margin: 0; }
nav.sidebar li a { display: block; padding: .25rem .6rem; border-radius: .3rem; color: #343a40; text-decoration: none; }
nav.sidebar li a:hover { background: #f1f3f5; }
nav.sidebar li.active a { background: #e7f1fc; color: var(--accent); font-weight: 600; }
nav.sidebar .nbfile { display: block; font-size: .72rem; color: #868e96; }
nav.toc h2 { font-size: .85rem; text-transform: uppercase; color: #6c757d; margin: 0 0 .4rem; }
nav.toc li a { color: #495057; text-decoration: none; display: block; padding: .1rem 0; }
nav.toc li.toc-h3 a { padding-left: .8rem; font-size: .82rem; }
main.content { padding: 1rem 0 4rem; min-width: 0; }
.page-title h1 { font-size: 2.1rem; margin: .6rem 0 .3rem; }
.page-title .description { font-size: 1.2rem; color: #6c757d; font-style: italic; margin-bottom: 1.5rem; }
.page-footer { color: #868e96; font-size: .8rem; border-top: 1px solid #dee2e6; margin-top: 3rem; padding-top: .6rem; }
.pager { display: flex; justify-content: space-between; margin-top: 2rem; gap: 1rem; }
.pager a { text-decoration: none; border: 1px solid #dee2e6; border-radius: .4rem; padding: .5rem .9rem; }
a { color: var(--accent); }
.jp-InputArea-editor pre, .jp-OutputArea-output pre { overflow-x: auto; }
.jp-RenderedHTMLCommon pre { background: #f8f9fa; padding: .5rem .7rem; border-radius: .3rem; }
.jp-RenderedHTMLCommon a code, .jp-RenderedHTMLCommon a:visited code { color: var(--accent); }
.jp-RenderedHTMLCommon hr { border: 0; border-top: 1px solid #dee2e6; margin: 1.5rem 0 .4rem; }
.jp-RenderedHTMLCommon a.source-link { float: right; font-size: smaller; }
.jp-RenderedHTMLCommon table { font-size: .85rem; }
.jp-RenderedImage img, .jp-RenderedHTMLCommon img { max-width: 100%; height: auto; }
details > summary { cursor: pointer; color: #6c757d; font-size: .85rem; margin: .3rem 0; }
.unbuilt-link { border-bottom: 1px dotted #adb5bd; }
table.api { border-collapse: collapse; width: 100%; font-size: .88rem; }
table.api td, table.api th { border-bottom: 1px solid #e9ecef; padding: .3rem .5rem; vertical-align: top; text-align: left; }
table.api td.sig code { white-space: pre-wrap; word-break: break-word; font-size: .8rem; }
table.api tr.method td.name { padding-left: 1.5rem; }
@media (max-width: 1100px) { .layout { grid-template-columns: var(--nav-w) minmax(0, 1fr); } nav.toc { display: none; } }
@media (max-width: 760px) { .layout { grid-template-columns: 1fr; } nav.sidebar { position: static; max-height: none; } }
"""

MATHJAX_CONFIG = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({tex2jax: {inlineMath: [['$','$'], ['\\\\(','\\\\)']], displayMath: [['$$','$$'], ['\\\\[','\\\\]']],
  processEscapes: true, processEnvironments: true}, displayAlign: 'center', messageStyle: 'none',
  CommonHTML: {linebreaks: {automatic: true}}, "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: 'TeX'}});
</script>"""


def page_html(site_title: str, page: Page, nav: str, body: str, toc: str, mathjax_url: str, pager: str) -> str:
    desc = f'<p class="description">{inline_md(page.description)}</p>' if page.description else ""
    src = page.nb_path.relative_to(ROOT).as_posix() if page.nb_path.is_relative_to(ROOT) else page.nb_path.name
    status = "executed" if page.executed else "not executed (no outputs)"
    made_from = (f"<code>{html.escape(src)}</code> ({status})" if page.nb_path.suffix == ".ipynb"
                 else "the library's exported symbols (<code>_modidx.py</code>)")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(page.title.replace("`", ""))} – {html.escape(site_title)}</title>
<link rel="stylesheet" href="_static/notebook.css"><link rel="stylesheet" href="_static/site.css">
{MATHJAX_CONFIG}
<script src="{mathjax_url}" async></script>
</head><body>
<header class="site-header"><a class="brand" href="index.html">{html.escape(site_title)}</a>
<a href="api.html">API reference</a></header>
<div class="layout">
{nav}
<main class="content"><header class="page-title"><h1 class="title">{inline_md(page.title)}</h1>{desc}</header>
{body}
{pager}
<p class="page-footer">Generated from {made_from} by <code>tools/build_docs.py</code>.</p>
</main>
{toc}
</div></body></html>
"""


def inline_md(text: str) -> str:
    "A title as html: escaped, with `code` spans."
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def nav_html(pages: list[Page], current: str) -> str:
    items = []
    for p in pages:
        cls = ' class="active"' if p.name == current else ""
        items.append(f'<li{cls}><a href="{p.name}">{inline_md(p.title)}'
                     f'<span class="nbfile">{html.escape(p.nb_path.name) if p.nb_path.suffix else ""}</span></a></li>')
    return f'<nav class="sidebar" aria-label="notebooks"><ul>{"".join(items)}</ul></nav>'


def pager_html(pages: list[Page], i: int) -> str:
    prev = f'<a href="{pages[i-1].name}">← {inline_md(pages[i-1].title)}</a>' if i > 0 else "<span></span>"
    nxt = f'<a href="{pages[i+1].name}">{inline_md(pages[i+1].title)} →</a>' if i + 1 < len(pages) else "<span></span>"
    return f'<div class="pager">{prev}{nxt}</div>'


# ----------------------------------------------------------------------------------------------
# The API reference: every exported symbol


def _first_line(obj) -> str:
    "First line of `obj`'s own docstring (not one inherited from `object`, e.g. 'Call self as a function.')."
    doc = inspect.getdoc(obj) if inspect.isclass(obj) else inspect.cleandoc(getattr(obj, "__doc__", None) or "")
    doc = doc or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _signature(obj) -> str:
    try: return str(inspect.signature(obj))
    except (TypeError, ValueError): return ""


def api_rows(lib: str, pages: dict[str, Page]) -> tuple[str, int]:
    "html of the API reference (a table per module, notebook order) and the number of symbols listed."
    mi = importlib.import_module(f"{lib}._modidx").d
    site = mi["settings"]["doc_host"] + mi["settings"]["doc_baseurl"]
    order = {page_name(p.name): i for i, p in enumerate(notebook_order())}
    mods = sorted(mi["syms"].items(), key=lambda kv: order.get(next(iter(kv[1].values()), ("",))[0].split("#")[0], 99)
                  if kv[1] else 99)
    out, n = [], 0
    for mod_name, syms in mods:
        mod = importlib.import_module(mod_name)
        documented = {k.removeprefix(mod_name + "."): v[0] for k, v in syms.items()}
        names = list(documented)
        names += [n_ for n_ in getattr(mod, "__all__", []) if n_ not in documented]   # exported constants too
        page_of_mod = next(iter(documented.values()), "").split("#")[0] or page_name(mod_name.split(".")[-1] + ".ipynb")
        rows = []
        for name in names:
            last = name.rsplit(".", 1)[-1]
            obj = mod
            try:
                for part in name.split("."): obj = getattr(obj, part)
            except AttributeError: obj = None
            if last.startswith("_") and not (last.startswith("__") and _first_line(obj)): continue   # private
            doc_link = documented.get(name, page_of_mod)
            page = doc_link.split("#")[0]
            label = f"<code>{html.escape(name)}</code>"
            cell = f'<a href="{html.escape(doc_link)}">{label}</a>' if page in pages else label
            if callable(obj): sig, doc = _signature(obj), _first_line(obj)
            else: sig, doc = (f"= {type(obj).__name__}" if obj is not None else ""), ""
            kind = "method" if "." in name else "top"
            if doc.startswith(f"{last}("): doc = ""   # a dataclass's generated docstring repeats the signature
            doc = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(doc))
            rows.append(f'<tr class="{kind}"><td class="name">{cell}</td><td class="sig"><code>{html.escape(sig)}</code></td>'
                        f"<td>{doc}</td></tr>")
            n += 1
        title = f'<a href="{page_of_mod}">{mod_name}</a>' if page_of_mod in pages else mod_name
        out.append(f'<h2 id="{pandoc_id(mod_name)}">{title}</h2><table class="api"><thead><tr><th>name</th>'
                   f'<th>signature</th><th>summary</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
    return "\n".join(out), n


# ----------------------------------------------------------------------------------------------
# Checking the built site: every internal href/src resolves (file, and the #anchor in it)


def check_site(out: Path) -> list[str]:
    "Problems with internal links of the site in `out`: missing files or missing anchors."
    from bs4 import BeautifulSoup
    ids: dict[Path, set[str]] = {}
    def ids_of(p: Path) -> set[str]:
        if p not in ids: ids[p] = {t["id"] for t in BeautifulSoup(p.read_text(), "html.parser").find_all(id=True)}
        return ids[p]
    problems = []
    for page in sorted(out.rglob("*.html")):
        if "_static" in page.relative_to(out).parts: continue
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for tag in soup.find_all(["a", "img", "link", "script", "source"]):
            url = tag.get("href") or tag.get("src")
            if not url: continue
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"): continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.is_file():
                problems.append(f"{page.name}: {tag.name} {url!r} -> missing file"); continue
            if parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in ids_of(target):
                problems.append(f"{page.name}: {tag.name} {url!r} -> no id {parts.fragment!r} in {target.name}")
    return problems


# ----------------------------------------------------------------------------------------------


def _copy_local_assets(soup, page: Page, out: Path) -> None:
    "Images/files the markdown refers to by a relative path (nbs/ first, then the repo root) go into the site."
    for tag in soup.find_all(["img", "a", "source"]):
        attr = "src" if tag.name in ("img", "source") else "href"
        url = tag.get(attr)
        if not url: continue
        parts = urlsplit(url)
        if parts.scheme or url.startswith(("#", "/")) or parts.path.endswith(".html") or not parts.path: continue
        rel = Path(unquote(parts.path))
        if ".." in rel.parts: continue
        for base in (page.nb_path.parent, ROOT):
            if (base / rel).is_file():
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(base / rel, out / rel)
                break


def _mathjax(out: Path, url: str | None) -> str:
    "The MathJax URL the pages load: `url`, else a copy of Debian's libjs-mathjax in the site, else the CDN."
    if url: return url
    src = DEBIAN_MATHJAX
    if not (src / "MathJax.js").is_file(): return CDN_MATHJAX
    dst = out / "_static" / "mathjax"
    keep = ("MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "config/local", "extensions", "jax/input/TeX", "jax/output/CommonHTML", "jax/element",
            "fonts/HTML-CSS/TeX/woff")
    for k in keep:
        s = (src / k).resolve()
        if s.is_file(): (dst / k).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(s, dst / k)
        elif s.is_dir(): shutil.copytree(s, dst / k, dirs_exist_ok=True)
    return "_static/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"


def build(out: Path, notebooks: list[Path], runs: Path | None = None, do_execute: bool = False,
          engine: str = "papermill", flags: set[str] | None = None, mathjax_url: str | None = None,
          save_runs: Path | None = None, keep_going: bool = False, log=print) -> dict:
    "Build the site into `out`; returns timings and counts. Raises if an internal link is broken."
    from bs4 import BeautifulSoup
    from nbdev.config import get_config
    cfg = get_config()
    site_url = (cfg.get("doc_host", "") + cfg.get("doc_baseurl", "")).rstrip("/")
    t0 = time.time(); timings = {}
    if out.exists(): shutil.rmtree(out)
    (out / "_static").mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="docs_build_"))
    if save_runs: save_runs.mkdir(parents=True, exist_ok=True)
    pages: list[Page] = []
    failed: list[str] = []
    try:
        for nb_path in notebooks:
            t = time.time()
            if do_execute:
                dst = (save_runs or work) / nb_path.name
                try: execute(nb_path, dst, engine=engine, run_flags=set(flags or ()))
                except Exception as e:
                    msg = f"{nb_path.name}: execution failed: {str(e)[-2000:]}"
                    if not keep_going: raise SystemExit(msg) from e
                    failed.append(msg); log(f"  FAILED {msg}"); continue
                page = Page(nb_path, dst, True)
            elif runs is not None and (runs / nb_path.name).is_file():
                ran = runs / nb_path.name
                page = Page(nb_path, ran, True)
                if ran.stat().st_mtime < nb_path.stat().st_mtime:
                    page.notes.append(f"{ran} is older than {nb_path.name}: outputs may be stale")
            else:
                page = Page(nb_path, nb_path, False)
                if runs is not None: page.notes.append(f"no {runs / nb_path.name}: rendered without outputs")
            try: process(page)
            except Exception as e:
                msg = f"{nb_path.name}: nbdev's docs processing failed: {str(e)[:300]}\n{e.__cause__ or ''}"
                if not keep_going: raise SystemExit(msg) from e
                failed.append(msg); log(f"  FAILED {msg}"); continue
            for m in mixed_import_cells(nb_path):
                page.notes.append(f"{m} mixes imports and other code: only its imports ran for show_doc "
                                  f"(nbdev_docs runs all of it; split the cell)")
            pages.append(page)
            timings[nb_path.stem] = round(time.time() - t, 1)
            log(f"  {nb_path.name:28s} -> {page.name:20s} {timings[nb_path.stem]:6.1f}s"
                f"{'  executed' if do_execute else ''}")
        by_name = {p.name: p for p in pages}
        api = Page(NBS / "api", NBS / "api", False, name="api.html", title="API reference",
                   description="Every exported symbol: its signature, the first line of its docstring, and a link "
                               "to where its notebook documents it.")
        nb_links = {p.nb_path.stem: p.name for p in pages}
        t = time.time()
        css = None
        all_pages = pages + [api]
        for i, page in enumerate(all_pages):
            if page is api:
                body, n_api = api_rows(cfg.lib_name, by_name)
            else:
                page_css, body = render_body(page)
                css = css or page_css
            page.soup = BeautifulSoup(body, "html.parser")
            localize(page.soup, page, {**by_name, "api.html": api}, site_url, nb_links)
            _copy_local_assets(page.soup, page, out)
        ids = {p.name: {t["id"] for t in p.soup.find_all(id=True)} | {"title"} for p in all_pages}
        for page in all_pages:
            fix_anchors(page.soup, page, ids)
            page.html = str(page.soup)
            page.toc = toc_html(page.soup)
        mj = _mathjax(out, mathjax_url)
        for i, page in enumerate(all_pages):
            (out / page.name).write_text(page_html(cfg.title, page, nav_html(all_pages, page.name), page.html,
                                                   page.toc, mj, pager_html(all_pages, i)))
        (out / "_static" / "notebook.css").write_text(css or "")
        (out / "_static" / "site.css").write_text(SITE_CSS)
        (out / ".nojekyll").write_text("")
        timings["render"] = round(time.time() - t, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from collections import Counter
    for p in pages:
        for note, n in Counter(p.notes).items(): log(f"  note {p.name}: {note}" + (f" (x{n})" if n > 1 else ""))
    log(f"  MathJax: {mj}")
    problems = check_site(out)
    if problems:
        raise SystemExit("broken internal links:\n  " + "\n  ".join(problems))
    timings["total"] = round(time.time() - t0, 1)
    return {"pages": [p.name for p in all_pages], "api_symbols": n_api, "timings": timings, "failed": failed}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "_site", help="output folder (default _site)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--execute", action="store_true", help="run each notebook first (cwd nbs/)")
    src.add_argument("--from-runs", type=Path, metavar="DIR",
                     help="take executed notebooks DIR/<name>.ipynb (e.g. _runs from `biovita reproduce`)")
    ap.add_argument("--only", help="comma-separated notebooks (stems or page names), e.g. 00b_taxonomy,05_benchmark; index always")
    ap.add_argument("--save-runs", type=Path, metavar="DIR",
                    help="with --execute: keep the executed notebooks in DIR (reuse them with --from-runs DIR)")
    ap.add_argument("--keep-going", action="store_true",
                    help="leave out a notebook that fails to execute or process, build the rest, exit 1 at the end")
    ap.add_argument("--engine", choices=("papermill", "execnb"), default="papermill")
    ap.add_argument("--flags", default="", help="test flags whose cells run too (default: skip slow/gpu/hub cells)")
    ap.add_argument("--mathjax-url", default=None, help="MathJax.js URL (default: local Debian copy, else CDN)")
    a = ap.parse_args(argv)
    os.chdir(ROOT)
    nbs = select(notebook_order(), a.only)
    print(f"building {len(nbs)} notebooks into {a.out}")
    res = build(a.out.resolve(), nbs, runs=a.from_runs.resolve() if a.from_runs else None, do_execute=a.execute,
                engine=a.engine, flags=set(a.flags.split()), mathjax_url=a.mathjax_url,
                save_runs=a.save_runs.resolve() if a.save_runs else None, keep_going=a.keep_going)
    print(f"built {len(res['pages'])} pages, {res['api_symbols']} API entries, links ok; "
          f"total {res['timings']['total']}s (render {res['timings']['render']}s)")
    if res["failed"]:
        sys.exit(f"{len(res['failed'])} notebook(s) left out:\n" + "\n".join(m.splitlines()[0] for m in res["failed"]))
    return res


if __name__ == "__main__":
    main()
