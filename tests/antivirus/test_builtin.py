"""The built-in protection without clamd (issue 17): dangerous attachment
types by name and by content, also inside zip and 7z; encrypted archives
flagged; an Office macro scored; archive bombs bounded in time and memory.
Through real SMTP sessions, and scan_message directly for the bounds."""
from __future__ import annotations

import io
import os
import time

import py7zr
import pytest

from coremail.pipeline.antivirus.attachments import Limits, scan_message
from .conftest import DATA, RCPT, mail, send, zipped

PE = b"MZ\x90\x00" + b"\x00" * 60 + b"This program cannot be run in DOS mode" + b"\x00" * 200
LNK = b"L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00F" + b"\x00" * 60
ISO = b"\x00" * 0x8001 + b"CD001" + b"\x00" * 2000


def sevenzip(name: str, data: bytes) -> bytes:
    b = io.BytesIO()
    with py7zr.SevenZipFile(b, "w") as z:
        z.writestr(data, name)
    return b.getvalue()


def docm() -> bytes:
    return zipped(("[Content_Types].xml", b"<Types/>"),
                  ("word/vbaProject.bin", (DATA / "vbaProject.bin").read_bytes()))


@pytest.mark.parametrize("name,data,what", [
    ("setup.exe", b"anything", "a Windows program"),
    ("invoice.pdf.js", b"var x = 1;", "a script"),
    ("report.pdf", PE, "a Windows program"),                        # by content
    ("photo.jpg", LNK, "a shortcut"),
    ("backup.bin", ISO, "a disk image"),
    ("files.zip", zipped(("readme.txt", b"hi"), ("run.bat", b"echo")), "a script"),
    ("files.zip", zipped(("doc.pdf", PE)), "a Windows program"),    # content inside a zip
    ("deep.zip", zipped(("in.zip", zipped(("x.scr", b"x")))), "a Windows program"),
    ("files.7z", sevenzip("tool.exe", b"xx"), "a Windows program"),
    ("bad", zipped(("a.vhd", b"x")), "a disk image"),              # a zip by its header only
], ids=["exe", "js", "pe-content", "lnk-content", "iso-content", "bat-in-zip",
        "pe-in-zip", "scr-in-zip-in-zip", "exe-in-7z", "zip-by-header"])
def test_dangerous_attachments_are_refused(srv, name, data, what):
    before = len(srv.inbox(RCPT))
    code, text = send(srv, mail((name, data)))
    assert code == 554 and text.startswith("5.7.1"), text
    assert what in text and "dangerous type of file" in text
    assert len(srv.inbox(RCPT)) == before


def test_score_setting_delivers_with_a_score(srv):
    srv.set(antivirus={"attachments": "score"}, antispam={"reject_score": 100.0})
    code, text = send(srv, mail(("setup.exe", b"x")))
    assert code == 250, text
    got = srv.store.blobs.read(srv.messages(RCPT, "Junk")[-1].blob_id)   # 8 points: Junk
    assert b"VIRUS_DANGEROUS_FILE" in got and b"X-Spam-Status: Yes" in got


def test_clean_attachments_pass(srv):
    code, text = send(srv, mail(("notes.zip", zipped(("a.txt", b"hello " * 100))),
                                ("table.csv", b"a,b\n1,2\n")))
    assert code == 250, text


def test_encrypted_archive_is_flagged(srv):
    code, text = send(srv, mail(("secret.zip", zipped(("a.txt", b"x" * 100), encrypted=True))))
    assert code == 250, text
    assert b"VIRUS_ENCRYPTED_ARCHIVE" in srv.inbox(RCPT)[-1]
    b = io.BytesIO()
    with py7zr.SevenZipFile(b, "w", password="pw", header_encryption=True) as z:
        z.writestr(b"x", "a.txt")
    found = scan_message(mail(("s.7z", b.getvalue())), Limits(3, 100, 100 << 20))
    assert [f.kind for f in found] == ["encrypted"]


def test_office_macro_is_scored(srv):
    srv.set(antispam={"junk_score": 50.0, "reject_score": 100.0})   # INBOX, whatever the score
    code, text = send(srv, mail(("invoice.docm", docm())))
    assert code == 250, text
    got = srv.inbox(RCPT)[-1]
    assert b"VIRUS_OFFICE_MACRO" in got
    found = scan_message(mail(("x.zip", zipped(("invoice.docm", docm())))),
                         Limits(3, 100, 100 << 20))
    assert found[0].kind == "macro" and "run on opening" in found[0].what


def test_archive_bombs_are_bounded(srv):
    zeros = b"\x00" * (60 << 20)
    bomb = zipped(("zeros.bin", zeros))
    assert len(bomb) < 200_000
    nested = zipped(*((f"{i}.zip", bomb) for i in range(3)))
    for m in (bomb, nested):
        t0 = time.monotonic()
        code, text = send(srv, mail(("big.zip", m)))
        assert code == 554 and "archive bomb" in text, text
        assert time.monotonic() - t0 < 5
    # unpacked bytes count against max_expanded even when every ratio is modest
    many = zipped(*((f"{i}.zip", zipped(("r.bin", os.urandom(1 << 20)))) for i in range(5)))
    found = scan_message(mail(("m.zip", many)), Limits(3, 100, 4 << 20))
    assert found and found[-1].kind == "bomb" and "4 MiB" in found[-1].what or "5 MiB" in found[-1].what
    # a member that lies about its size is still read only within the budget
    lying = bytearray(zipped(("in.zip", zipped(("z", zeros)))))
    found = scan_message(mail(("l.zip", bytes(lying))), Limits(3, 10_000_000, 8 << 20))
    assert found and found[-1].kind == "bomb"


def test_depth_is_bounded():
    inner = zipped(("x.exe", b"x"))
    for _ in range(5):
        inner = zipped(("in.zip", inner))
    assert scan_message(mail(("d.zip", inner)), Limits(3, 100, 100 << 20)) == []
    assert scan_message(mail(("d.zip", inner)), Limits(7, 100, 100 << 20))[0].kind == "dangerous"


def test_broken_archives_are_no_error():
    for data in (b"PK\x03\x04garbage", b"7z\xbc\xaf\x27\x1cgarbage", b"Rar!\x1a\x07\x00junk"):
        assert scan_message(mail(("a.bin", data)), Limits(3, 100, 100 << 20)) == []
