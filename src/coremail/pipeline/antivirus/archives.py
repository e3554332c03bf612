"""Looking inside archives without being blown up by them: zip (stdlib
zipfile, members read in bounded pieces, so nested zips and contents are
sniffed), 7z (py7zr) and rar (rarfile), whose member lists are read but not
unpacked (their names and encryption flags say enough, and unpacking them
is the costly part). A `Budget` bounds depth, per-member ratio, unpacked
bytes, member count and time; crossing it is an archive bomb (`Bomb`).
"""
from __future__ import annotations

import io
import time
import zipfile
from dataclasses import dataclass, field

from . import kinds
from .macros import macro_words

HEAD = 64 * 1024           # bytes of a member read to sniff its type
MAX_MEMBERS = 10000
MAX_SECONDS = 5.0          # per message, all archives together
SMALL = 1024 * 1024        # members this small are never called bombs for their ratio


class Bomb(Exception):
    """An archive that would expand past the budget (words say how)."""


@dataclass
class Finding:
    kind: str        # "dangerous", "encrypted", "macro", "bomb"
    where: str       # "invoice.zip > setup.exe"
    what: str        # "a Windows program"


@dataclass
class Budget:
    max_depth: int
    max_ratio: int
    max_expanded: int
    expanded: int = 0
    members: int = 0
    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_SECONDS)

    def spend(self, n: int, where: str) -> None:
        self.expanded += n
        if self.expanded > self.max_expanded:
            raise Bomb(f"{where} unpacks to more than {self.max_expanded >> 20} MiB")
        if time.monotonic() > self.deadline:
            raise Bomb(f"{where} takes more than {MAX_SECONDS:g} s to look into")

    def count(self, where: str) -> None:
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise Bomb(f"{where} holds more than {MAX_MEMBERS} files")

    def ratio(self, size: int, packed: int, where: str) -> None:
        if size > SMALL and size > self.max_ratio * max(packed, 1):
            raise Bomb(f"{where} expands {size // max(packed, 1)} times "
                       f"(limit {self.max_ratio})")


def inspect_file(name: str, data: bytes, where: str, budget: Budget, depth: int,
                 out: list[Finding]) -> None:
    """Findings for one file (an attachment or an archive member)."""
    what = kinds.by_name(name) or kinds.by_content(data[:HEAD], data[-512:], name)
    if what:
        out.append(Finding("dangerous", where, what))
        return
    if kinds.office_kind(name, data[:8]):
        if data[:2] == b"PK":
            _sizes(data, where, budget)   # olevba unpacks it: no bomb may reach it
        words = macro_words(name, data)
        if words:
            out.append(Finding("macro", where, words))
        return
    kind = kinds.archive_kind(name, data[:8])
    if kind is not None and depth < budget.max_depth:
        {"zip": _zip, "7z": _sevenzip, "rar": _rar}[kind](data, where, budget, depth + 1, out)


def _zip(data: bytes, where: str, budget: Budget, depth: int, out: list[Finding]) -> None:
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return      # not a zip after all (or broken): nothing to look into
    with z:
        _sizes(data, where, budget)
        for info in z.infolist():
            if info.is_dir():
                continue
            inner = f"{where} > {info.filename}"
            if info.flag_bits & 0x1:
                out.append(Finding("encrypted", inner, "an encrypted archive member"))
                what = kinds.by_name(info.filename)
                if what:
                    out.append(Finding("dangerous", inner, what))
                continue
            if kinds.by_name(info.filename):
                out.append(Finding("dangerous", inner, kinds.by_name(info.filename) or ""))
                continue
            nested = kinds.archive_kind(info.filename, b"") is not None
            body = _read(z, info, inner, budget, whole=nested)
            if not nested and len(body) >= HEAD and (kinds.archive_kind("", body[:8])
                                                     or kinds.office_kind("", body[:8])):
                body = _read(z, info, inner, budget, whole=True)   # an archive by its header
            inspect_file(info.filename, body, inner, budget, depth, out)


def _sizes(data: bytes, where: str, budget: Budget) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return
    declared = 0
    for info in infos:
        budget.count(where)
        declared += info.file_size
        budget.ratio(info.file_size, info.compress_size, f"{where} > {info.filename}")
    if declared > budget.max_expanded:
        raise Bomb(f"{where} says it unpacks to {declared >> 20} MiB")


def _read(z: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, budget: Budget,
          whole: bool) -> bytes:
    """The member's first HEAD bytes, or all of it within the budget; the
    declared size is not trusted: reading stops at the budget."""
    want = budget.max_expanded - budget.expanded + 1 if whole else HEAD
    try:
        with z.open(info) as f:
            parts, got = [], 0
            while got < want:
                chunk = f.read(min(256 * 1024, want - got))
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
                budget.spend(len(chunk), where)
                budget.ratio(got, info.compress_size, where)
            return b"".join(parts)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError,
            ValueError):
        return b""


def _sevenzip(data: bytes, where: str, budget: Budget, depth: int,
              out: list[Finding]) -> None:
    try:
        import py7zr
    except ImportError:        # optional: the header alone is still seen
        return
    try:
        with py7zr.SevenZipFile(io.BytesIO(data)) as z:
            encrypted = z.needs_password()
            members = z.list()
    except py7zr.exceptions.PasswordRequired:
        out.append(Finding("encrypted", where, "an encrypted archive (even its file names)"))
        return
    except Exception:          # py7zr raises many kinds on a broken file: nothing to see
        return
    if encrypted:
        out.append(Finding("encrypted", where, "an encrypted archive"))
    _listed(where, budget, out,
            [(m.filename, int(m.uncompressed or 0), int(m.compressed or 0) if m.compressed
              else None, m.is_directory) for m in members])


def _rar(data: bytes, where: str, budget: Budget, depth: int, out: list[Finding]) -> None:
    try:
        import rarfile
    except ImportError:
        return
    try:
        with rarfile.RarFile(io.BytesIO(data)) as z:
            encrypted = z.needs_password()
            members = z.infolist()
    except rarfile.PasswordRequired:
        out.append(Finding("encrypted", where, "an encrypted archive (even its file names)"))
        return
    except Exception:
        return
    if encrypted:
        out.append(Finding("encrypted", where, "an encrypted archive"))
    _listed(where, budget, out,
            [(m.filename, m.file_size, m.compress_size, m.is_dir()) for m in members])


def _listed(where: str, budget: Budget, out: list[Finding],
            members: list[tuple[str, int, int | None, bool]]) -> None:
    """7z and rar: names, flags and declared sizes only (nothing unpacked)."""
    declared = 0
    for name, size, packed, is_dir in members:
        budget.count(where)
        declared += size
        inner = f"{where} > {name}"
        if packed is not None:   # a solid 7z block reports no size per member
            budget.ratio(size, packed, inner)
        what = None if is_dir else kinds.by_name(name)
        if what:
            out.append(Finding("dangerous", inner, what))
    if declared > budget.max_expanded:
        raise Bomb(f"{where} says it unpacks to {declared >> 20} MiB")
