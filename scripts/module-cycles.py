#!/usr/bin/env python3
"""Lists import cycles between the top-level modules of a crate's src/.

A module A depends on B when a file under A names `crate::B` (or `super::B`
from A's root file). Prints every strongly connected component of more than
one module and exits 1 if there is any. Usage: module-cycles.py CRATE_SRC...
"""
import pathlib
import re
import sys


def modules(src):
    mods = {}
    for path in src.rglob("*.rs"):
        rel = path.relative_to(src)
        top = rel.parts[0].removesuffix(".rs")
        if top in ("lib", "main"):
            continue
        mods.setdefault(top, []).append(path)
    return mods


def graph(src):
    mods = modules(src)
    edges = {m: set() for m in mods}
    for mod, files in mods.items():
        for path in files:
            text = path.read_text()
            # A unit-test module may use anything: only the code proper counts.
            text = text.split("#[cfg(test)]\nmod tests", 1)[0]
            for other in re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text):
                if other in mods and other != mod:
                    edges[mod].add(other)
    return edges


def cycles(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    failed = False
    for arg in sys.argv[1:]:
        edges = graph(pathlib.Path(arg))
        found = cycles(edges)
        for component in found:
            failed = True
            links = [f"{a} -> {b}" for a in component for b in sorted(edges[a]) if b in component]
            print(f"{arg}: cycle among {', '.join(component)}: {'; '.join(links)}")
        if not found:
            print(f"{arg}: no cycle among {len(edges)} modules")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
