#!/usr/bin/python3
"""layers.py - the structure docs/DESIGN.md promises, checked.

    tests/unit/layers.py SOURCE_ROOT

- Layers only look down: among the modules of src/ (a module is a file stem:
  foo.c and foo.h are module foo), the include graph has no cycle longer than
  MAX_CYCLE modules. A longer cycle means a lower layer calls up by name.
- No file of src/ or tools/ is longer than MAX_LINES lines: past that a file
  mixes several modules (the files split out of one are under 1,000).
- No source file includes a .c file (a fuzz target links the module instead).

Prints each finding and exits 1 when one is found.
"""

import os
import re
import sys

MAX_CYCLE = 3
MAX_LINES = 1200
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def modules(src):
    graph = {}
    for f in sorted(os.listdir(src)):
        if not f.endswith((".c", ".h")):
            continue
        m = f[:-2]
        with open(os.path.join(src, f)) as fp:
            text = fp.read()
        deps = graph.setdefault(m, set())
        for inc in INCLUDE.findall(text):
            base = os.path.basename(inc)
            if base.endswith(".h") and os.path.exists(os.path.join(src, base)):
                if base[:-2] != m:
                    deps.add(base[:-2])
    return graph


def cycles(graph):
    """Strongly connected components (Tarjan), largest first."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted((c for c in out if len(c) > 1), key=len, reverse=True)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    bad = 0
    comps = cycles(modules(os.path.join(root, "src")))
    for comp in comps:
        if len(comp) > MAX_CYCLE:
            print("include cycle of %d modules (at most %d): %s"
                  % (len(comp), MAX_CYCLE, " ".join(comp)))
            bad += 1
    print("largest include cycle: %d modules%s" % (
        len(comps[0]) if comps else 0, " (%s)" % " ".join(comps[0]) if comps else ""))
    for d in ("src", "tools", "tests/unit", "tests/fuzz", "bench"):
        path = os.path.join(root, d)
        if not os.path.isdir(path):
            continue
        for f in sorted(os.listdir(path)):
            if not f.endswith((".c", ".h")):
                continue
            with open(os.path.join(path, f)) as fp:
                text = fp.read()
            n = text.count("\n")
            if d in ("src", "tools") and n > MAX_LINES:
                print("%s/%s: %d lines (at most %d)" % (d, f, n, MAX_LINES))
                bad += 1
            for inc in INCLUDE.findall(text):
                if inc.endswith(".c"):
                    print("%s/%s includes %s: link the module instead" % (d, f, inc))
                    bad += 1
    print("layers: %s" % ("ok" if bad == 0 else "%d findings" % bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
