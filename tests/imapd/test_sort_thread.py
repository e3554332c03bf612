"""SORT's base subject (RFC 5256 2.1), ESORT's ordered sequence set, and
SORT/THREAD over a socket (the imaptest scripts cover the algorithms in depth)."""
from __future__ import annotations

import pytest

from coremail.imapd.sort import _ordered_set, base_subject, subject_is_reply

from .test_rfc3501 import Raw


@pytest.mark.parametrize("subject, base, reply", [
    ("hello", "HELLO", False),
    ("Re: [list] Fwd: hello (fwd)", "HELLO", True),
    ("[fwd: Re: x]", "X", True),
    ("Re: re: RE:   x  ", "X", True),
    ("[blob] only", "ONLY", False),
    ("[only a blob]", "[ONLY A BLOB]", False),
    ("=?utf-8?q?Gr=C3=BC=C3=9Fe?=", "GRüßE", False),
    (None, "", False),
])
def test_base_subject(subject, base, reply):
    assert base_subject(subject) == base and subject_is_reply(subject) is reply


def test_esort_all_keeps_the_sort_order():
    assert _ordered_set([5, 3, 4, 2, 1]) == b"5,3:4,2,1"
    assert _ordered_set([1, 2, 3]) == b"1:3"


def test_sort_and_thread_over_the_wire(imap, alice):
    for n, (subject, extra) in enumerate([("b", ""), ("Re: a", "In-Reply-To: <m3@x>\r\n"), ("a", "")], 1):
        imap.deliver(alice, f"Message-ID: <m{n}@x>\r\nSubject: {subject}\r\n{extra}\r\nbody\r\n".encode())
    c = Raw(imap.port).login(alice)
    caps = c.cmd("c", "CAPABILITY")
    assert all(x in caps for x in (b" SORT ", b" ESORT ", b" THREAD=REFERENCES", b" SORT=DISPLAY "))
    c.cmd("s", "SELECT INBOX")
    assert c.cmd("a", "SORT (SUBJECT) UTF-8 ALL").startswith(b"* SORT 2 3 1\r\n")
    assert c.cmd("b", "UID SORT (REVERSE SUBJECT) UTF-8 ALL").startswith(b"* SORT 1 2 3\r\n")
    got = c.cmd("e", "SORT RETURN (MIN COUNT ALL) (SUBJECT) UTF-8 ALL")
    assert got.startswith(b'* ESEARCH (TAG "e") MIN 1 COUNT 3 ALL 2:3,1\r\n')
    assert c.cmd("t", "THREAD REFERENCES UTF-8 ALL").startswith(b"* THREAD (1)(3 2)\r\n")
    assert c.cmd("o", "THREAD ORDEREDSUBJECT UTF-8 ALL").startswith(b"* THREAD (1)(2 3)\r\n")
    assert c.cmd("x", "SORT (BOGUS) UTF-8 ALL").startswith(b"x BAD ")
    c.close()
