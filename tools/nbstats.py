"""The shape of the notebooks and the library, measured: the bars of the redesign, checked.

    python tools/nbstats.py            # a table per notebook, then every violation
    python tools/nbstats.py --check    # exit 1 if a bar is not met (tests/test_repo.py runs this)

Bars: no module over MAX_MODULE_LINES lines; each notebook imports only modules of notebooks
before it; median code cell of the notebooks at most MAX_MEDIAN lines; no code cell over
MAX_CELL_LINES lines except plotting cells; every exported public function or class is used by a
(non-exported) code cell within the next two code cells of its definition.
"""
import argparse, ast, json, re, statistics, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES, MAX_MEDIAN, MAX_CELL_LINES = 450, 6, 40
PLOTTING = re.compile(r"\b(plt\.|sns\.|\.plot\(|ax\.|axs?\[|fig\b|subplots)")
IMPORT = re.compile(r"^\s*from biovita_nb\.(\w+) import|^\s*import biovita_nb\.(\w+)|^\s*from biovita_nb import (\w+)", re.M)


def notebooks(nbs: Path = ROOT / "nbs") -> list[Path]:
    return sorted(nbs.glob("[0-9]*.ipynb"))


def cells(nb: Path) -> list[dict]:
    return [dict(kind=c["cell_type"], src="".join(c["source"])) for c in json.loads(nb.read_text())["cells"]]


def is_export(src: str) -> bool: return bool(re.match(r"#\|\s*export\b", src))


def module_of(nb: Path) -> str | None:
    for c in cells(nb):
        m = re.search(r"#\|\s*default_exp\s+(\S+)", c["src"])
        if m: return m.group(1)


def code_lines(src: str) -> int:
    "Lines of a code cell, without nbdev directives."
    return len([l for l in src.splitlines() if not l.startswith("#|")])


def public_defs(src: str) -> list[str]:
    body = "\n".join(l for l in src.splitlines() if not l.startswith("#|"))
    try: tree = ast.parse(body)
    except SyntaxError: return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and not n.name.startswith("_")]


def undemonstrated(code: list[str]) -> list[str]:
    "Exported public names not used by a non-exported code cell among the next two code cells."
    out = []
    for k, src in enumerate(code):
        if not is_export(src): continue
        after = [s for s in code[k + 1:k + 3] if not is_export(s)]
        out += [n for n in public_defs(src) if not any(re.search(rf"\b{re.escape(n)}\b", s) for s in after)]
    return out


def measure(root: Path = ROOT) -> dict:
    nbs = notebooks(root / "nbs")
    order = {module_of(nb): i for i, nb in enumerate(nbs) if module_of(nb)}
    rows, problems, all_lines = [], [], []
    for i, nb in enumerate(nbs):
        code = [c["src"] for c in cells(nb) if c["kind"] == "code"]
        lines = [code_lines(s) for s in code]
        all_lines += lines
        long = [n for s, n in zip(code, lines) if n > MAX_CELL_LINES and not PLOTTING.search(s)]
        later = sorted({m for s in code for g in IMPORT.findall(s) for m in g if m and order.get(m, -1) >= i})
        undemo = undemonstrated(code)
        rows.append(dict(notebook=nb.stem, module=module_of(nb) or "-", code_cells=len(code),
                         median=statistics.median(lines) if lines else 0, long=len(long), undemonstrated=len(undemo)))
        if long: problems.append(f"{nb.stem}: {len(long)} code cell(s) over {MAX_CELL_LINES} lines ({', '.join(map(str, long))})")
        if later: problems.append(f"{nb.stem}: imports {later}, which are not exported by an earlier notebook")
        if undemo: problems.append(f"{nb.stem}: not used within two code cells of the definition: {', '.join(undemo)}")
    for mod in sorted(order):
        n = len((root / "biovita_nb" / f"{mod}.py").read_text().splitlines())
        if n > MAX_MODULE_LINES: problems.append(f"biovita_nb/{mod}.py: {n} lines (> {MAX_MODULE_LINES})")
    median = statistics.median(all_lines)
    if median > MAX_MEDIAN: problems.append(f"median code cell: {median} lines (> {MAX_MEDIAN})")
    return dict(rows=rows, median=median, problems=problems)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a bar is not met")
    args = ap.parse_args()
    m = measure()
    print(f"{'notebook':<16} {'module':<12} {'cells':>5} {'median':>6} {'long':>4} {'undemo':>6}")
    for r in m["rows"]:
        print(f"{r['notebook']:<16} {r['module']:<12} {r['code_cells']:>5} {r['median']:>6} {r['long']:>4} {r['undemonstrated']:>6}")
    print(f"median code cell over all notebooks: {m['median']} lines")
    for p in m["problems"]: print("-", p)
    sys.exit(1 if args.check and m["problems"] else 0)
