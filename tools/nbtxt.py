"""Round-trip notebooks through a plain-text form, for editing notebooks in a text editor.

    python tools/nbtxt.py to-txt nbs/00b_taxonomy.ipynb > /tmp/00.txt
    python tools/nbtxt.py from-txt /tmp/00.txt nbs/00b_taxonomy.ipynb

Text form: each cell starts with a header line `%% md` or `%% code`, optionally followed by
`tags=a,b` (e.g. `%% code tags=parameters`). Everything up to the next header is the cell
source (trailing blank lines dropped). Outputs are not kept: run the notebook to get them.
A cell whose source is unchanged keeps its id (nbdev_export stamps ids into the library, so an
edit does not renumber every cell after it); a new or edited cell gets an id from its source.
"""
import hashlib, json, re, sys
from pathlib import Path

HEADER = re.compile(r'^%% (md|code)(?: tags=(\S+))?\s*$')

def to_txt(nb_path):
    nb = json.loads(Path(nb_path).read_text())
    out = []
    for c in nb['cells']:
        kind = 'md' if c['cell_type'] == 'markdown' else 'code'
        tags = c.get('metadata', {}).get('tags', [])
        out.append(f"%% {kind}" + (f" tags={','.join(tags)}" if tags else ''))
        out.append(''.join(c['source']).rstrip('\n'))
        out.append('')
    return '\n'.join(out)

def from_txt(txt, old_cells=()):
    cells, cur = [], None
    for line in txt.splitlines():
        m = HEADER.match(line)
        if m:
            if cur: cells.append(cur)
            cur = dict(kind=m.group(1), tags=(m.group(2) or '').split(',') if m.group(2) else [], lines=[])
        elif cur is not None: cur['lines'].append(line)
    if cur: cells.append(cur)
    old_ids = {}                                                        # source -> ids of the cells that hold it
    for c in old_cells: old_ids.setdefault(''.join(c['source']), []).append(c['id'])
    nb_cells, used = [], {i for ids in old_ids.values() for i in ids}
    for i, c in enumerate(cells):
        src = '\n'.join(c['lines']).strip('\n')
        meta = {'tags': c['tags']} if c['tags'] else {}
        if old_ids.get(src): cid = old_ids[src].pop(0)
        else:
            cid = hashlib.sha1(f"{i}:{src}".encode()).hexdigest()[:8]
            while cid in used: cid = hashlib.sha1(cid.encode()).hexdigest()[:8]
        used.add(cid)
        if c['kind'] == 'md': nb_cells.append(dict(cell_type='markdown', id=cid, metadata=meta, source=src))
        else: nb_cells.append(dict(cell_type='code', execution_count=None, id=cid, metadata=meta, outputs=[], source=src))
    return dict(cells=nb_cells, metadata=dict(kernelspec=dict(display_name='python3', language='python', name='python3')),
                nbformat=4, nbformat_minor=5)

if __name__ == '__main__':
    cmd, *args = sys.argv[1:]
    if cmd == 'to-txt': sys.stdout.write(to_txt(args[0]))
    elif cmd == 'from-txt':
        target = Path(args[1])
        old = json.loads(target.read_text())['cells'] if target.exists() else ()
        nb = from_txt(Path(args[0]).read_text(), old)
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    else: sys.exit(__doc__)
