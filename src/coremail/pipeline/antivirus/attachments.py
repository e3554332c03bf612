"""The built-in protection, with or without clamd: every MIME part that is a
file (it has a name, or is not text) is judged by its name and its content,
archives are looked into within a budget, Office documents are asked for
macros. Runs on the pipeline's threads (`scan_message` is blocking)."""
from __future__ import annotations

from dataclasses import dataclass

from ...mail.mime import _walk, decoded_body, part_filename, summarize
from .archives import Bomb, Budget, Finding, inspect_file

TEXT = ("text/plain", "text/html")
MAX_PARTS = 500


@dataclass(frozen=True)
class Limits:
    max_depth: int
    max_ratio: int
    max_expanded: int


def files(content: bytes) -> list[tuple[str, bytes]]:
    """(file name, decoded bytes) of each part that is a file, found with
    mail.mime's summary (byte offsets: only the files' bodies are decoded)."""
    out: list[tuple[str, bytes]] = []
    for n, node in enumerate(_walk(summarize(content)["body"])):
        if n > MAX_PARTS:
            break
        if node["type"] == "multipart" or "message" in node:
            continue    # containers: their parts are walked
        name = part_filename(node) or ""
        ctype = f"{node['type']}/{node['subtype']}"
        if not name and (ctype in TEXT or node["type"] == "message" or n == 0
                         and node["type"] == "text"):
            continue
        data = decoded_body(content, {"body": node}, ())
        if data:
            out.append((name.replace("\n", " ").replace("\r", ""), data))
    return out


def scan_message(content: bytes, limits: Limits) -> list[Finding]:
    """Every finding in the message's files; a bomb ends the scan."""
    budget = Budget(limits.max_depth, limits.max_ratio, limits.max_expanded)
    out: list[Finding] = []
    try:
        for name, data in files(content):
            inspect_file(name, data, name or "an unnamed attachment", budget, 0, out)
    except Bomb as e:
        out.append(Finding("bomb", "", f"an archive bomb: {e}"))
    except RecursionError:
        out.append(Finding("bomb", "", "an archive bomb: nested too deeply"))
    return out
