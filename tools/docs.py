"""Build the docs site offline with Sphinx + myst-nb: the pages `nbdev_docs` (quarto) makes, with their outputs.

    python tools/docs.py --out _site --execute                  # run every notebook as nbdev_test does, build
    python tools/docs.py --out _site --from-runs _runs          # notebooks run by `biovita reproduce --preset toy`
    python tools/docs.py --out _site --execute --only 00b_taxonomy,05_benchmark   # a subset (index always)
    python -m http.server --directory _site 8000                # then open http://127.0.0.1:8000

Each notebook (executed, or as committed: no outputs) goes through nbdev's own docs processing
(`nbdev.processors.FilterDefaults`, what `nbdev_proc_nbs` applies before quarto: title and description
from the title cell, `show_doc` for every exported symbol, `#| hide` / `#| export` handling, directives
stripped, nbdev's symbol links); quarto's cell options left on a cell (`#| echo: false` ...) become
myst-nb's cell tags. myst-nb renders the pages into Sphinx (sphinx-book-theme, Sphinx's search,
MathJax served from Debian's `libjs-mathjax` when installed); `api.html` is autodoc on every exported
symbol of `_modidx`. Page names are nbdev's (`05_benchmark.ipynb` -> `benchmark.html`) and every
heading also gets quarto's anchor (`### Foo.bar` -> `#foo.bar`), so nbdev's links resolve. The build
fails on a Sphinx warning and on any internal href/src whose file or #anchor is missing.
"""
from __future__ import annotations

import argparse, ast, json, os, re, shutil, sys, tempfile, time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
DEBIAN_MATHJAX = Path("/usr/share/javascript/mathjax")
NAV_FIRST = ("index", "reproduce", "own_model", "file_formats")   # the sidebar: these first, then every other notebook by name


def page_name(nb_name: str) -> str:
    "nbdev's page name for a notebook (as in `_modidx`): `05_benchmark.ipynb` -> `benchmark.html`."
    return re.sub(r"^\d+[a-zA-Z0-9]*_", "", Path(nb_name).name.lower()).removesuffix(".ipynb") + ".html"


def notebook_order(nbs: Path = NBS) -> list[Path]:
    "Every notebook of `nbs/` (each gets a page): `NAV_FIRST` first, the others by name (nbdev's sidebar order)."
    found = sorted(p for p in nbs.glob("*.ipynb") if not p.name.startswith(("_", ".")))
    return sorted(found, key=lambda p: (NAV_FIRST.index(p.stem) if p.stem in NAV_FIRST else len(NAV_FIRST), p.name))


def select(nbs: list[Path], only: str | None) -> list[Path]:
    "Filter by `--only` (comma-separated notebook stems or page names; index, the home page, always); unknown names are an error."
    if not only: return nbs
    keys = {p.stem: p for p in nbs} | {page_name(p.name).removesuffix(".html"): p for p in nbs}
    wanted = [w.strip().removesuffix(".ipynb") for w in only.split(",") if w.strip()] + ["index"]
    unknown = [w for w in wanted if w not in keys]
    if unknown: sys.exit(f"--only: no notebook {unknown} in {NBS} (have: {', '.join(p.stem for p in nbs)})")
    return [p for p in nbs if p in {keys[w] for w in wanted}]


def mixed_import_cells(nb_path: Path) -> list[str]:
    """Cells that import and also do other work. nbdev's docs processing (`exec_show_docs`) runs every cell
    holding an import, alone (without the notebook's earlier cells): such a cell fails there or runs slow work."""
    from execnb.nbio import read_nb
    from nbdev.process import NBProcessor
    nb = read_nb(nb_path)
    NBProcessor(nb=nb, procs=[])   # parses each cell's directives
    def mixed(c):
        if c.cell_type != "code" or c.directives_.keys() & {"export", "exports", "exporti"}: return False
        try: body = ast.parse("\n".join(l for l in c.source.splitlines() if not l.lstrip().startswith(("%", "!")))).body
        except SyntaxError: return False
        imports = [s for s in body if isinstance(s, (ast.Import, ast.ImportFrom))]
        return bool(imports) and len(imports) < len(body)
    return [f"{nb_path.name} cell {i}: {c.source.splitlines()[0][:70]!r}" for i, c in enumerate(nb.cells) if mixed(c)]


def execute(notebooks: list[Path], runs: Path, flags=()) -> None:
    """Run each notebook as `nbdev_test` does (execnb, a fresh process, cwd nbs/, cells flagged slow/gpu/hub
    not run unless in `flags`), its executed copy written to `runs/<name>`; the flagged cells keep their source."""
    import subprocess
    runs.mkdir(parents=True, exist_ok=True)
    code = ("import sys; from execnb.nbio import read_nb, write_nb; from execnb.shell import CaptureShell\n"
            "from biovita_nb.reproduction import cell_flags\n"
            "nb, held = read_nb(sys.argv[1]), {}\n"
            "for i, c in enumerate(nb.cells):\n"
            "    if c.cell_type == 'code' and cell_flags(c.source) - set(sys.argv[3:]): held[i], c.source = c.source, ''\n"
            "CaptureShell().run_all(nb, exc_stop=True)\n"
            "for i, src in held.items(): nb.cells[i].source = src\n"
            "write_nb(nb, sys.argv[2])")
    for nb in notebooks:
        t = time.time()
        r = subprocess.run([sys.executable, "-c", code, str(nb), str(runs / nb.name), *flags], cwd=nb.parent,
                           env={**os.environ, "IN_TEST": "1"}, capture_output=True, text=True)
        if r.returncode: raise SystemExit(f"{nb}: a cell failed when executed (as `nbdev_test --path {nb}` runs it):\n{r.stderr[-3000:]}")
        print(f"  executed {nb.name} in {time.time() - t:.0f}s -> {runs / nb.name}")


# ---- nbdev's processing, then quarto's cell options as myst-nb tags

_re_qopt = re.compile(r"^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")
_re_md_link = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)(\{[^}]*\})?")   # [text](url){pandoc attributes}


def link_fixer(site_url: str, git_url: str, pages: set[str], images: set[str]):
    """A function rewriting markdown links to this site's relative page names; repo files not in the site link to
    GitHub; images the markdown shows by a repo-relative path are added to `images` (copied into the site)."""
    def fix(m):
        bang, text, url, _attrs = m.groups()   # pandoc's `{target="_blank" ...}` dropped
        if url.startswith(site_url + "/"): url = url[len(site_url) + 1:]
        parts = urlsplit(url)
        path = unquote(parts.path)
        if bang and not parts.scheme and (ROOT / path).is_file(): images.add(path)
        if parts.scheme or url.startswith(("#", "/")) or bang: return f"{bang}[{text}]({url})"
        if path.endswith((".ipynb", ".html")) and "/" not in path:
            url = page_name(re.sub(r"\.(ipynb|html)$", "", path) + ".ipynb") + (f"#{parts.fragment}" if parts.fragment else "")
            if url.split("#")[0] not in pages: return text   # a page this (partial) build leaves out: plain text
        elif (ROOT / path).exists(): url = f"{git_url}/blob/main/{path}"
        return f"[{text}]({url})"
    return lambda md: _re_md_link.sub(fix, md)


def process(nb_path: Path, source: Path, fix_links) -> dict:
    "The notebook `source` (an executed copy of `nb_path`, or itself) after nbdev's docs processors, as myst-nb reads it."
    from execnb.nbio import read_nb
    from nbdev.processors import FilterDefaults
    nb, cwd, in_test = read_nb(source), os.getcwd(), os.environ.get("IN_TEST")
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    os.environ["IN_TEST"] = "1"   # as nbdev_proc_nbs
    try:
        os.chdir(nb_path.parent)
        FilterDefaults()(nb)
    except Exception as e: raise SystemExit(f"{nb_path}: nbdev's docs processing failed ({e}): {e.__cause__!r}; nbdev_docs "
                                            f"fails the same way: fix the cell in {nb_path.name}") from e
    finally:
        os.chdir(cwd)
        if in_test is None: os.environ.pop("IN_TEST", None)
    fm = dict(getattr(nb, "frontmatter_", {}) or {})
    cells = [c for c in nb.cells if not (c.cell_type == "raw" and c.source.startswith("---"))]
    title = f"# {fm.get('title') or nb_path.stem}\n\n" + (f"> {fm['description']}\n" if fm.get("description") else "")
    return {"cells": [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": title}] + [cell_for_myst(c, fix_links) for c in cells],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def cell_for_myst(c, fix_links) -> dict:
    "A processed cell as nbformat; quarto's options (`#| echo: false` ...) stripped into myst-nb tags."
    text = lambda v: "".join(v) if isinstance(v, list) else v
    d = {k: v for k, v in dict(c).items() if not k.endswith("_")}
    d["source"], tags = text(d.get("source", "")), list(dict(d.get("metadata", {})).get("tags", []))
    if d["cell_type"] == "markdown": d["source"] = fix_links(d["source"])
    if d["cell_type"] == "code":
        lines, opts = d["source"].splitlines(), {}
        while lines and (m := _re_qopt.match(lines[0])): opts[m[1]] = m[2].strip("'\""); lines.pop(0)
        d["source"] = "\n".join(lines).strip("\n")
        tags += [tag for opt, vals, tag in (("include", ("false",), "remove-cell"), ("echo", ("false",), "remove-input"),
                                            ("output", ("false",), "remove-output"), ("code-fold", ("true", "show"), "hide-input"))
                 if opts.get(opt) in vals]
        if not d["source"]: tags.append("remove-input")
        d["outputs"], d["execution_count"] = [dict(o) for o in d.get("outputs", [])], d.get("execution_count")
        for o in d["outputs"]:
            if "text" in o: o["text"] = text(o["text"])
            o["data"] = {k: text(v) for k, v in o.get("data", {}).items()} if "data" in o else o.pop("data", None) or {}
            if o["output_type"] == "stream": o.pop("data")
            else: o.setdefault("metadata", {})
            if "text/markdown" in o.get("data", {}):   # show_doc's `---` rule: docutils allows none inside an output
                o["data"]["text/markdown"] = re.sub(r"^---$", "<hr>", fix_links(o["data"]["text/markdown"]), flags=re.M)
    else: d.pop("outputs", None); d.pop("execution_count", None)
    d["metadata"] = {"tags": tags} if tags else {}
    return d


# ---- the API reference: autodoc on every exported symbol of _modidx

def api_markdown(lib: str) -> str:
    "The API page (MyST): per module, an autodoc directive for each public symbol `_modidx` lists."
    import importlib, inspect
    syms = importlib.import_module(f"{lib}._modidx").d["syms"]
    out = ["# API reference\n\nEvery exported symbol, from its docstring; the module's notebook page shows it at work.\n"]
    for mod_name, entries in syms.items():
        mod = importlib.import_module(mod_name)
        out.append(f"## {mod_name}\n\nDocumented on [{mod_name.split('.')[-1]}]({next(iter(entries.values()))[0].split('#')[0]}).\n")
        out.append("```{eval-rst}")   # autodoc writes reStructuredText
        for key in entries:
            name = key.removeprefix(mod_name + ".")
            if name.rsplit(".", 1)[-1].startswith("_"): continue
            owner, obj = mod, mod
            for part in name.split("."): owner, obj = obj, inspect.getattr_static(obj, part)
            if isinstance(obj, (staticmethod, classmethod)): obj = obj.__func__
            kind = ("class" if inspect.isclass(obj) else "property" if isinstance(obj, property)
                    else ("method" if inspect.isclass(owner) else "function") if callable(obj) else
                    "attribute" if inspect.isclass(owner) else "data")
            out.append(f".. auto{kind}:: {mod_name}.{name}\n")
        out.append("```\n")
    return "\n".join(out)


# ---- Sphinx: configuration, quarto's anchors, MathJax, the link check

def pandoc_id(text: str) -> str:
    "Pandoc's (so quarto's) automatic heading identifier, which nbdev's doc links point at."
    s = re.sub(r"[^\w\s.-]", "", text.strip()).lower()
    return re.sub(r"^[^a-z]+", "", re.sub(r"\s+", "-", s)) or "section"


def add_quarto_ids(app, doctree, docname):
    "Sphinx hook: every section (and show_doc's heading) also answers to quarto's id of its title (docutils writes `foo-bar`, nbdev links `#foo.bar`)."
    from docutils import nodes
    taken = {i for n in doctree.findall(nodes.Element) for i in n.get("ids", [])}
    for node in doctree.findall(lambda n: isinstance(n, (nodes.section, nodes.rubric))):   # show_doc's headings: rubrics
        qid = pandoc_id((node[0] if isinstance(node, nodes.section) else node).astext())
        if qid not in taken: node["ids"].append(qid); taken.add(qid)


def markdown_docstring(app, what, name, obj, options, lines):
    "Sphinx hook: nbdev's docstrings are markdown, not reST: keep their `code` spans as literals, escape the rest."
    parts = re.split(r"(`[^`\n]+`)", "\n".join(lines))
    text = "".join(f"\\ ``{p[1:-1]}``\\ " if p.startswith("`") else re.sub(r"([\\*_|`])", r"\\\1", p) for p in parts)
    lines[:] = text.splitlines()


def mathjax_static(work: Path) -> dict:
    "Sphinx settings for MathJax: a copy of Debian's libjs-mathjax (2.7) in the site when installed, else Sphinx's CDN default."
    if not (DEBIAN_MATHJAX / "MathJax.js").is_file(): return {}
    dst = work / "static" / "mathjax"
    for k in ("MathJax.js", "config/TeX-AMS_CHTML.js", "config/Safe.js", "extensions", "jax/input/TeX",
              "jax/output/CommonHTML", "jax/element", "fonts/HTML-CSS/TeX/woff"):
        s = (DEBIAN_MATHJAX / k).resolve()
        (dst / k).parent.mkdir(parents=True, exist_ok=True)
        if s.is_file(): shutil.copy2(s, dst / k)
        elif s.is_dir(): shutil.copytree(s, dst / k, dirs_exist_ok=True)
    return {"html_static_path": [str(work / "static")], "mathjax_path": "mathjax/MathJax.js?config=TeX-AMS_CHTML,Safe",
            "mathjax2_config": {"tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                                            "processEscapes": True}, "messageStyle": "none"}}


def sphinx_config(cfg, work: Path) -> dict:
    "The whole Sphinx configuration (no conf.py): myst-nb rendering stored outputs, autodoc, the book theme, search."
    return {"project": cfg.title, "author": cfg.author, "copyright": cfg.copyright, "release": cfg.version,
            "extensions": ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"],
            "smartquotes": False, "nb_execution_mode": "off", "nb_merge_streams": True, "nb_render_markdown_format": "myst",
            "myst_enable_extensions": ["dollarmath", "amsmath"], "myst_all_links_external": True,
            "autodoc_member_order": "bysource", "autodoc_typehints": "signature", "autodoc_inherit_docstrings": False,
            "html_theme": "sphinx_book_theme", "html_title": cfg.title, "html_copy_source": False,
            "html_show_sourcelink": False, "html_theme_options": {"repository_url": cfg.git_url, "use_repository_button": True,
                                                                             "use_download_button": False},
            "suppress_warnings": ["mystnb.unknown_mime_type"], **mathjax_static(work)}


def check_site(out: Path) -> list[str]:
    "Problems with the internal links of the site in `out`: a missing file, or a #fragment naming no id of its page."
    from bs4 import BeautifulSoup
    ids, problems = {}, []
    def ids_of(p: Path) -> set[str]:
        if p not in ids: ids[p] = {t["id"] for t in BeautifulSoup(p.read_text(), "html.parser").find_all(id=True)}
        return ids[p]
    for page in sorted(out.glob("*.html")):
        for tag in BeautifulSoup(page.read_text(), "html.parser").find_all(["a", "img", "link", "script", "source"]):
            url = tag.get("href") or tag.get("src")
            parts = urlsplit(url or "")
            if not url or parts.scheme or url.startswith("//") or (url == "#"): continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.is_file(): problems.append(f"{page.name}: {tag.name} {url!r} -> missing file")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in ids_of(target):
                problems.append(f"{page.name}: {tag.name} {url!r} -> no id {parts.fragment!r} in {target.name}")
    return problems


def repoint_symbol_links(out: Path) -> int:
    """nbdev links every `symbol` in backticks to `page.html#symbol`, also symbols that get no heading of their own (a
    private helper, a method defined in its class's body); quarto leaves those anchors dangling. Point them at the class
    (`#foo` for `Foo.bar`) when it has a heading, else keep the code without a link. Returns how many were changed."""
    from bs4 import BeautifulSoup
    soups, changed = {p: BeautifulSoup(p.read_text(), "html.parser") for p in out.glob("*.html")}, 0
    ids = {p.name: {t["id"] for t in s.find_all(id=True)} for p, s in soups.items()}
    for page, soup in soups.items():
        hits = 0
        for a in soup.select("a[href] > code:only-child"):
            link = a.parent; parts = urlsplit(link["href"])
            target = parts.path or page.name
            if parts.scheme or not parts.fragment or target not in ids or parts.fragment in ids[target]: continue
            owner = parts.fragment.split(".")[0]
            if "." in parts.fragment and owner in ids[target]: link["href"] = f"{parts.path}#{owner}"
            else: link.unwrap()
            hits += 1
        if hits: page.write_text(str(soup)); changed += hits
    return changed


def build(out: Path, notebooks: list[Path], runs: Path | None, log=print) -> dict:
    "Build the site of `notebooks` (outputs from `runs/<name>.ipynb` where present) into `out`; raise on a warning or broken link."
    from nbdev.config import get_config
    from sphinx.application import Sphinx
    cfg, t0 = get_config(), time.time()
    pages, images = {page_name(p.name) for p in notebooks} | {"api.html"}, set()
    fix_links = link_fixer((cfg.doc_host + cfg.doc_baseurl).rstrip("/"), cfg.git_url, pages, images)
    with tempfile.TemporaryDirectory(prefix="docs_") as tmp:
        work = Path(tmp); src = work / "src"; src.mkdir()
        for nb_path in notebooks:
            ran = runs / nb_path.name if runs else None
            if ran is None or not ran.is_file(): log(f"  {nb_path.name}: no executed copy, rendered without outputs")
            nb = process(nb_path, ran if ran and ran.is_file() else nb_path, fix_links)
            (src / page_name(nb_path.name)).with_suffix(".ipynb").write_text(json.dumps(nb))
        for img in images: (src / img).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(ROOT / img, src / img)
        toc = "\n".join(["```{toctree}", ":hidden:", ":maxdepth: 1", "", "self",
                         *[page_name(p.name).removesuffix(".html") for p in notebooks if p.stem != "index"], "api", "```"])
        index = json.loads((src / "index.ipynb").read_text())
        index["cells"].append({"cell_type": "markdown", "id": "toctree", "metadata": {}, "source": toc})
        (src / "index.ipynb").write_text(json.dumps(index))
        (src / "api.md").write_text(fix_links(api_markdown(cfg.lib_name)))
        t1 = time.time()
        if out.exists(): shutil.rmtree(out)
        app = Sphinx(str(src), None, str(out), str(work / "doctrees"), "html", confoverrides=sphinx_config(cfg, work),
                     warningiserror=True, keep_going=True, status=None, parallel=1)
        app.connect("doctree-resolved", add_quarto_ids); app.connect("autodoc-process-docstring", markdown_docstring)
        app.build()
        if app.statuscode: raise SystemExit(f"sphinx-build reported warnings (above); the site in {out} is incomplete")
    (out / ".nojekyll").write_text("")
    log(f"  {repoint_symbol_links(out)} links to symbols without a heading of their own repointed or unlinked")
    problems = check_site(out)
    if problems: raise SystemExit("broken internal links:\n  " + "\n  ".join(problems))
    return {"pages": sorted(pages), "process_s": round(t1 - t0, 1), "sphinx_s": round(time.time() - t1, 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "_site", help="output folder (default _site)")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--execute", action="store_true", help="run the notebooks first, as nbdev_test does (execnb, cwd nbs/)")
    src.add_argument("--from-runs", type=Path, metavar="DIR", help="executed notebooks DIR/<name>.ipynb (`biovita reproduce` writes _runs)")
    ap.add_argument("--runs", type=Path, default=ROOT / "_runs", help="with --execute: where the executed copies go (default _runs)")
    ap.add_argument("--only", help="comma-separated notebooks (stems or page names), e.g. 00b_taxonomy,05_benchmark; index always")
    ap.add_argument("--flags", default="", help="test flags whose cells run too (default none: slow/gpu/hub cells skipped)")
    a = ap.parse_args(argv)
    os.chdir(ROOT)
    nbs, t0 = select(notebook_order(), a.only), time.time()
    runs = a.from_runs.resolve() if a.from_runs else a.runs.resolve() if a.execute else None
    if a.from_runs and not runs.is_dir(): sys.exit(f"--from-runs {runs}: no such folder (run `biovita reproduce --preset toy` first)")
    if a.execute: execute(nbs, runs, a.flags.split())
    res = build(a.out.resolve(), nbs, runs)
    print(f"built {len(res['pages'])} pages into {a.out} in {time.time() - t0:.0f}s (processing {res['process_s']}s, "
          f"sphinx {res['sphinx_s']}s); no warnings, internal links and anchors ok")
    return res


if __name__ == "__main__":
    main()
