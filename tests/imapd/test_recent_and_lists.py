"""\\Recent owned by one session (RFC 3501 2.3.2), subscriptions as names
(6.3.6, 6.3.9), LIST-EXTENDED's RECURSIVEMATCH and CHILDINFO (RFC 5258), the
SENT* dates as written, and the 64 KiB ID line, over a raw socket."""
from __future__ import annotations

from .test_messages import fill
from .test_rfc3501 import Raw


def test_recent_belongs_to_one_session(imap, alice):
    fill(imap, alice, 2)
    ro, a, b = (Raw(imap.port).login(alice) for _ in range(3))
    assert b"* 2 RECENT\r\n" in ro.cmd("e", "EXAMINE INBOX")        # read-only: claims nothing
    assert b"RECENT 2" in a.cmd("st", "STATUS INBOX (RECENT)")
    assert b"* 2 RECENT\r\n" in a.cmd("s", "SELECT INBOX")
    assert b"* 0 RECENT\r\n" in b.cmd("s", "SELECT INBOX")          # a has them
    assert b"RECENT 0" in ro.cmd("st", "STATUS INBOX (RECENT)")
    got = a.cmd("f", "FETCH 1:2 (FLAGS)")
    assert got.count(b"\\Recent") == 2
    assert b"\\Recent" not in b.cmd("f", "FETCH 1:2 (FLAGS)")
    a.cmd("t", "STORE 1 +FLAGS.SILENT (\\Seen)")
    assert a.cmd("n", "SEARCH NEW").startswith(b"* SEARCH 2\r\n")
    assert a.cmd("o", "SEARCH OLD").startswith(b"* SEARCH\r\n")
    assert b.cmd("o", "SEARCH OLD").startswith(b"* SEARCH 1 2\r\n")
    assert b.cmd("r", "SEARCH RECENT").startswith(b"* SEARCH\r\n")
    # a new message: exactly one of the two read-write sessions gets it as recent
    fill(imap, alice, 1)
    got = [s.cmd("n", "NOOP") for s in (a, b)]
    assert all(b"* 3 EXISTS\r\n" in g for g in got)
    assert sum(b" RECENT\r\n" in g for g in got) == 1
    assert b"* 3 RECENT\r\n" in got[0]                   # a asked first
    for s in (ro, a, b):
        s.close()


def test_subscriptions_are_names_and_lsub_shows_noselect_parents(imap, alice):
    c = Raw(imap.port).login(alice)
    for name in ("p", "p/kid", "q/deep/leaf", "gone"):
        assert b"c OK" in c.cmd("c", f"CREATE {name}")
    got = c.cmd("l", 'LSUB "" *')
    assert b'"/" p' not in got and b"INBOX" in got                   # CREATE does not subscribe
    for name in ("p/kid", "q/deep/leaf", "gone"):
        assert b"s OK" in c.cmd("s", f"SUBSCRIBE {name}")
    assert b"s NO [NONEXISTENT]" in c.cmd("s", "SUBSCRIBE never")
    assert b"d OK" in c.cmd("d", "DELETE gone")
    got = c.cmd("l", 'LSUB "" %')
    assert b'* LSUB (\\Noselect) "/" p\r\n' in got and b'* LSUB (\\Noselect) "/" q\r\n' in got
    assert b"p/kid" not in got
    assert b'* LSUB (\\Noselect) "/" gone\r\n' in got
    got = c.cmd("l", 'LIST (SUBSCRIBED) "" *')
    assert b'* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" gone\r\n' in got
    assert b'* LIST (\\HasNoChildren \\Subscribed) "/" p/kid\r\n' in got
    got = c.cmd("l", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
    assert b'* LIST (\\HasChildren) "/" p ("CHILDINFO" ("SUBSCRIBED"))\r\n' in got
    assert b'\\HasChildren) "/" q ("CHILDINFO" ("SUBSCRIBED"))\r\n' in got
    assert b"l BAD" in c.cmd("l", 'LIST (RECURSIVEMATCH) "" %')
    assert b"u OK" in c.cmd("u", "UNSUBSCRIBE gone")               # no folder: still works
    assert b"gone" not in c.cmd("l", 'LSUB "" *')
    assert b"r OK" in c.cmd("r", "RENAME p pp")
    assert b'* LSUB () "/" pp/kid\r\n' in c.cmd("l", 'LSUB "" pp/*')  # the rename took it along
    c.close()


def test_invalid_modified_utf7_is_no(imap, alice):
    c = Raw(imap.port).login(alice)
    assert c.cmd("s", "SELECT a&Jjo").startswith(b"s NO Invalid mailbox name")
    assert c.cmd("l", 'LIST "" a&Jjo*').startswith(b"l OK")
    c.close()


def test_sent_dates_as_written(imap, alice):
    # 23:30 at -0500 is the next day in UTC; SENTON takes the day as written
    imap.deliver(alice, b"Date: Sat, 24 Mar 2007 23:30:00 -0500\r\nSubject: x\r\n\r\nx\r\n")
    c = Raw(imap.port).login(alice)
    c.cmd("s", "SELECT INBOX")
    assert c.cmd("a", "SEARCH SENTON 24-Mar-2007").startswith(b"* SEARCH 1\r\n")
    assert c.cmd("b", "SEARCH SENTBEFORE 25-Mar-2007").startswith(b"* SEARCH 1\r\n")
    assert c.cmd("c", "SEARCH SENTSINCE 25-Mar-2007").startswith(b"* SEARCH\r\n")
    c.close()


def test_condstore_enabled_by_fetch_modseq_tells_highestmodseq(imap, alice):
    fill(imap, alice, 3)
    c = Raw(imap.port).login(alice)
    c.cmd("s", "SELECT INBOX")
    assert b"* OK [HIGHESTMODSEQ " in c.cmd("f", "FETCH 1 (MODSEQ)")
    for n in (1, 3, 2):
        c.cmd("t", f"STORE {n} +FLAGS.SILENT (\\Seen)")
    mods = {n: int(c.cmd("m", f"FETCH {n} (MODSEQ)").split(b"MODSEQ (")[1].split(b")")[0])
            for n in (1, 2, 3)}
    got = c.cmd("e", "SEARCH RETURN (MIN) 1:3 SEEN")
    assert got.startswith(b'* ESEARCH (TAG "e") MIN 1\r\n')
    got = c.cmd("e", "SEARCH RETURN (MIN) 1:3 MODSEQ 1")
    assert got.startswith(b'* ESEARCH (TAG "e") MIN 1 MODSEQ %d\r\n' % mods[1])
    got = c.cmd("e", "SEARCH RETURN (MAX) 1:3 MODSEQ 1")
    assert got.startswith(b'* ESEARCH (TAG "e") MAX 3 MODSEQ %d\r\n' % mods[3])
    got = c.cmd("e", "SEARCH RETURN (ALL) 1:3 MODSEQ 1")
    assert got.startswith(b'* ESEARCH (TAG "e") ALL 1:3 MODSEQ %d\r\n' % mods[2])
    c.close()


def test_id_with_rfc2971_maxima_before_login(imap):
    c = Raw(imap.port)
    pairs = " ".join(f'"{f"k{k:02d}".ljust(30, "k")}" "{"v" * 1024}"' for k in range(30))
    line = f"ID ({pairs})"
    assert 30000 < len(line) < 65536
    assert c.cmd("i", line).endswith(b"i OK ID completed\r\n")
    # other commands keep the short pre-login limit
    assert b"BAD Line too long" in c.cmd("n", "NOOP " + "x" * 20000)
    assert c.cmd("n", "NOOP") == b"n OK NOOP completed\r\n"
    c.close()


def test_multiappend_is_all_or_none(imap):
    imap.add_user("max@example.test")
    imap.store.update_user("max@example.test", quota=300)
    c = Raw(imap.port).login("max@example.test")
    assert b" MULTIAPPEND " in c.cmd("c", "CAPABILITY")
    one, two = b"Subject: one\r\n\r\n" + b"1" * 100 + b"\r\n", b"Subject: two\r\n\r\n" + b"2" * 100 + b"\r\n"
    c.sock.sendall(b"a1 APPEND INBOX (\\Seen) {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(one), one, len(two), two))
    got = c.until(b"\r\n")
    assert got.startswith(b"a1 OK [APPENDUID ") and b" 1:2] " in got
    big = b"Subject: big\r\n\r\n" + b"3" * 150 + b"\r\n"       # the first fits, the second not
    c.sock.sendall(b"a2 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(one), one, len(big), big))
    assert c.until(b"\r\n").startswith(b"a2 NO [OVERQUOTA]")
    c.cmd("s", "SELECT INBOX")
    got = c.cmd("f", "FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert got.count(b" FETCH (") == 2 and b"Subject: one" in got and b"Subject: two" in got
    assert b"big" not in got
    c.close()
