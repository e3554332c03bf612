"""No file path of a message outside the store: every other package reads
blobs by id through `Store.blobs` (open/read/size), so a blob store that is
not a directory (an object store) needs no change anywhere else."""
from __future__ import annotations

import ast
from pathlib import Path

import coremail

SRC = Path(coremail.__file__).parent
PATH_ATTRS = frozenset(("path", "root", "tmp", "_final"))


def _path_uses(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in PATH_ATTRS:
            owner = ast.unparse(node.value)
            if "blobs" in owner.lower() or "blobstore" in owner.lower():
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_nothing_outside_the_store_asks_blobs_for_a_path():
    offenders = []
    for py in sorted(SRC.rglob("*.py")):
        if (SRC / "store") in py.parents:
            continue
        for line, expr in _path_uses(ast.parse(py.read_text(), str(py))):
            offenders.append(f"{py.relative_to(SRC.parent)}:{line}: {expr}")
    assert offenders == [], "message files are opened by blob id (store.blobs.open/read/size):\n" + \
        "\n".join(offenders)


def test_the_check_sees_the_usual_spellings():
    code = ("store.blobs.path(b)\nself.blobs.path(b)\ngetattr(store, 'blobs').path(b)\n"
            "blobs.root / 'x'\ns.store.blobs.open(b)\nlock.path\n")
    assert [line for line, _ in _path_uses(ast.parse(code))] == [1, 2, 3, 4]
