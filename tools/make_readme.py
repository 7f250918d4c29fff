"""Write README.md from nbs/index.ipynb (markdown cells as they are, code cells as python
blocks with their text outputs; links to other notebooks point into nbs/). nbdev_readme needs quarto, which is not installable
everywhere; this gives the same README without it.

A code cell marked `#| echo: false` that shows a file of the repository
(`Markdown(Path("../figures/table_seen.md").read_text())`) is replaced by that file's content, read
now: the README's results come from `figures/`, so the CI sync check catches a README that no
longer matches the committed results.

    python tools/make_readme.py           # write README.md
    python tools/make_readme.py --check   # exit 1 if README.md is out of date
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def notebook_links(md: str) -> str:
    "Links to sibling notebooks (`[File formats](file_formats.ipynb)`, relative to nbs/ in the docs) made relative to the repo root."
    return re.sub(r"\]\(([\w.-]+\.ipynb)(#[^)]*)?\)", lambda m: f"](nbs/{m[1]}{m[2] or ''})", md)

def render(nb_path=ROOT / "nbs" / "index.ipynb") -> str:
    nb = json.loads(Path(nb_path).read_text())
    parts = ["<!-- generated from nbs/index.ipynb by tools/make_readme.py; edit the notebook, not this file -->"]
    for cell in nb["cells"]:
        src = "".join(cell["source"]).strip("\n")
        if cell["cell_type"] == "markdown":
            parts.append(notebook_links(src))
            continue
        if src.lstrip().startswith("#| hide") or not src: continue
        shown = re.search(r'Path\("([^"]+)"\)\.read_text\(\)', src)
        if "#| echo: false" in src and shown:
            parts.append((Path(nb_path).parent / shown.group(1)).read_text().strip("\n"))
            continue
        code = "\n".join(l for l in src.splitlines() if not l.startswith("#|"))
        parts.append(f"```python\n{code}\n```")
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/markdown" in data: parts.append("".join(data["text/markdown"]).strip("\n"))
            elif "text/plain" in data: parts.append("    " + "".join(data["text/plain"]).strip("\n").replace("\n", "\n    "))
            elif out.get("output_type") == "stream": parts.append("    " + "".join(out["text"]).strip("\n").replace("\n", "\n    "))
    return "\n\n".join(parts) + "\n"

if __name__ == "__main__":
    text, readme = render(), ROOT / "README.md"
    if "--check" in sys.argv[1:]:
        if not readme.exists() or readme.read_text() != text:
            sys.exit("README.md is out of date with nbs/index.ipynb: run `python tools/make_readme.py`")
    else: readme.write_text(text)
