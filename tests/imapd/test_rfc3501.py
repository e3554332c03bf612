"""Reviewed corners of RFC 3501 and RFC 7162 over a raw socket, where the
exact bytes and the number of tagged replies matter."""
from __future__ import annotations

import socket

from .conftest import PASSWORD
from .test_messages import fill


class Raw:
    """A bare IMAP connection: send a tagged command, read up to its tagged reply."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.until(b"\r\n")

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            data = self.sock.recv(65536)
            assert data, f"connection closed before {marker!r}; got {self.buf!r}"
            self.buf += data
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def cmd(self, tag: str, line: str) -> bytes:
        self.sock.sendall(f"{tag} {line}\r\n".encode())
        out = b""
        while True:
            got = self.until(b"\r\n")
            out += got
            if got.startswith(tag.encode() + b" "):
                return out

    def login(self, who: str) -> "Raw":
        assert b"a0 OK" in self.cmd("a0", f"LOGIN {who} {PASSWORD}")
        return self

    def close(self) -> None:
        self.sock.close()


def test_fetch_of_a_missing_message_gets_one_tagged_bad(imap, alice):
    fill(imap, alice, 2)
    c = Raw(imap.port).login(alice)
    c.cmd("s", "SELECT INBOX")
    got = c.cmd("f1", "FETCH 9 (FLAGS)")
    assert got.startswith(b"f1 BAD ")
    got = c.cmd("f2", "FETCH 1 (SAVEDATE)")
    assert got.startswith(b"f2 BAD ")
    # no second tagged line was left behind for the next command to trip on
    assert c.cmd("n", "NOOP") == b"n OK NOOP completed\r\n"
    c.close()


def test_list_inbox_in_any_case(imap, alice):
    c = Raw(imap.port).login(alice)
    assert b"a OK" in c.cmd("a", "CREATE INBOX/child")
    got = c.cmd("l1", 'LIST "" "inBoX"')
    assert b'* LIST (\\HasChildren) "/" INBOX\r\n' in got
    got = c.cmd("l2", 'LIST "" "Inbox/%"')
    assert b'"/" INBOX/child\r\n' in got
    got = c.cmd("l3", 'LIST "iNbOx/" "%"')
    assert b'"/" INBOX/child\r\n' in got
    c.close()


def test_condstore_fetch_responses_carry_uid_and_modseq(imap, alice):
    fill(imap, alice, 2)
    c = Raw(imap.port).login(alice)
    c.cmd("s", "SELECT INBOX")
    c.cmd("e", "ENABLE CONDSTORE")
    got = c.cmd("t1", "STORE 2 +FLAGS (\\Flagged)")
    assert got.startswith(b"* 2 FETCH (UID 2 FLAGS (\\Recent \\Flagged) MODSEQ (")
    got = c.cmd("t2", "FETCH 1 (BODY[TEXT])")  # sets \Seen implicitly
    assert got.startswith(b"* 1 FETCH (UID 1 BODY[TEXT] {9}\r\nhello 1\r\n")
    assert b"FLAGS (\\Recent \\Seen)" in got and b"MODSEQ (" in got
    got = c.cmd("t3", "FETCH 2 (FLAGS)")
    assert b"UID 2" in got and b"MODSEQ (" in got
    c.close()


def test_a_new_keyword_is_announced_with_flags(imap, alice):
    fill(imap, alice, 1)
    a = Raw(imap.port).login(alice)
    b = Raw(imap.port).login(alice)
    a.cmd("s", "SELECT INBOX")
    b.cmd("s", "SELECT INBOX")
    got = a.cmd("t", "STORE 1 +FLAGS ($Label1)")
    assert got.startswith(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)\r\n"
                          b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)]")
    assert b"* 1 FETCH (FLAGS (\\Recent $Label1))" in got
    # the other session learns of it before the FETCH that uses it
    got = b.cmd("n", "NOOP")
    assert got.index(b"* FLAGS (") < got.index(b"* 1 FETCH (UID 1 FLAGS ($Label1))")
    a.close()
    b.close()
