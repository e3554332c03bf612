"""Message semantics of RFC 3501 and its extensions through imaplib: FETCH,
\\Seen and PEEK, STORE, EXPUNGE renumbering, UIDs, SEARCH, APPEND, COPY/MOVE,
CONDSTORE and QUOTA."""
from __future__ import annotations

import imaplib
import re
import time


MSG = (b"From: Bob Example <bob@example.test>\r\nTo: Alice <alice@example.test>\r\n"
       b"Subject: =?utf-8?q?caf=C3=A9?= plans\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
       b"Message-ID: <m1@example.test>\r\nX-Tag: blue\r\n\r\nMeet at noon, bring the tickets.\r\n")


def msg(n: int, body: str = "hello") -> bytes:
    return (f"From: sender{n}@example.test\r\nTo: alice@example.test\r\nSubject: number {n}\r\n"
            f"\r\n{body} {n}\r\n").encode()


def fill(imap, who, n):
    return [imap.deliver(who, msg(i)) for i in range(1, n + 1)]


def test_select_reports_state_and_uidvalidity_is_stable(imap, alice):
    fill(imap, alice, 3)
    c = imap.client(alice)
    typ, data = c.select("INBOX")
    assert (typ, data) == ("OK", [b"3"])
    validity = c.response("UIDVALIDITY")[1]
    assert c.response("UIDNEXT")[1] == [b"4"]
    c.logout()
    c = imap.client(alice)
    c.select("INBOX", readonly=True)
    assert c.response("UIDVALIDITY")[1] == validity
    assert c.response("READ-ONLY")[0] == "READ-ONLY"
    c.logout()


def test_peek_leaves_seen_alone_and_body_sets_it(imap, alice):
    imap.deliver(alice, MSG)
    c = imap.client(alice)
    c.select("INBOX")
    typ, data = c.fetch("1", "(BODY.PEEK[] FLAGS)")
    assert data[0][1] == MSG and b"\\Seen" not in data[0][0]
    assert imap.messages(alice)[0].flags == frozenset()
    typ, data = c.fetch("1", "(BODY[TEXT])")
    assert data[0][1] == b"Meet at noon, bring the tickets.\r\n"
    assert b"\\Seen" in data[1]
    assert "\\Seen" in imap.messages(alice)[0].flags
    c.logout()


def test_envelope_bodystructure_sections_partial(imap, alice):
    imap.deliver(alice, MSG)
    c = imap.client(alice)
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("1", "(ENVELOPE BODYSTRUCTURE RFC822.SIZE)")
    head = data[0]
    assert b'"=?utf-8?q?caf=C3=A9?= plans"' in head
    assert b'(("Bob Example" NIL "bob" "example.test"))' in head
    assert b'"<m1@example.test>"' in head
    assert b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 34 1' in head
    assert b"RFC822.SIZE %d" % len(MSG) in head
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT X-TAG)] BODY.PEEK[]<0.4>)")
    assert data[0][1] == b"Subject: =?utf-8?q?caf=C3=A9?= plans\r\nX-Tag: blue\r\n\r\n"
    assert data[1][1] == b"From"
    c.logout()


def test_store_flags_keywords_and_silent(imap, alice):
    fill(imap, alice, 3)
    c = imap.client(alice)
    c.select("INBOX")
    typ, data = c.store("1:2", "+FLAGS", "(\\Flagged $Important)")
    assert len(data) == 2 and b"$Important" in data[0]
    typ, data = c.store("2", "-FLAGS.SILENT", "(\\Flagged)")
    assert data == [None]
    typ, data = c.store("3", "FLAGS", "(\\Answered \\Draft)")
    flags = {m.uid: m.flags for m in imap.messages(alice)}
    assert flags == {1: {"\\Flagged", "$Important"}, 2: {"$Important"}, 3: {"\\Answered", "\\Draft"}}
    c.select("INBOX")
    assert b"$Important" in c.response("FLAGS")[1][0]
    c.logout()


def test_expunge_renumbers_and_uids_are_never_reused(imap, alice):
    fill(imap, alice, 5)
    c = imap.client(alice)
    c.select("INBOX")
    c.store("2,4,5", "+FLAGS", "(\\Deleted)")
    typ, data = c.expunge()
    assert data == [b"5", b"4", b"2"]  # each number valid when sent: highest first
    typ, data = c.fetch("1:*", "(UID)")
    assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"1", b"3"]
    imap.deliver(alice, msg(6))
    c.noop()
    typ, data = c.uid("FETCH", "*", "(UID)")
    assert b"UID 6" in data[-1]  # 4 and 5 are gone for good
    c.logout()


def test_uid_commands_and_uid_expunge(imap, alice):
    fill(imap, alice, 4)
    c = imap.client(alice)
    c.select("INBOX")
    c.uid("STORE", "1:4", "+FLAGS", "(\\Deleted)")
    c.uid("EXPUNGE", "2:3")
    assert c.response("EXPUNGE")[1] == [b"3", b"2"]
    assert [m.uid for m in imap.messages(alice)] == [1, 4]
    typ, data = c.uid("SEARCH", "ALL")
    assert data == [b"1 4"]
    typ, data = c.uid("FETCH", "100:*", "(FLAGS)")  # n:* always names the last message
    assert b"UID 4" in data[0]
    c.logout()


def test_search_keys(imap, alice):
    imap.deliver(alice, MSG, flags={"\\Seen"})
    for i in range(2, 5):
        imap.deliver(alice, msg(i, "body text ünïcode" if i == 3 else "plain"))
    c = imap.client(alice)
    c.select("INBOX")
    s = lambda *k: c.search(*k)[1][0].split()  # noqa: E731
    assert s(None, "FROM", "bob") == [b"1"]
    assert s(None, "TO", "alice") == [b"1", b"2", b"3", b"4"]
    c.literal = "café".encode()
    assert c.search("UTF-8", "SUBJECT")[1][0].split() == [b"1"]
    c.literal = "ünïcode".encode()
    assert c.search("UTF-8", "BODY")[1][0].split() == [b"3"]
    assert s(None, "TEXT", "tickets") == [b"1"]
    assert s(None, "HEADER", "X-Tag", "blue") == [b"1"]
    assert s(None, "UNSEEN") == [b"2", b"3", b"4"]
    assert s(None, "OR", "SEEN", "SUBJECT", "4") == [b"1", b"4"]
    assert s(None, "NOT", "SEEN", "LARGER", "10", "SMALLER", "100000") == [b"2", b"3", b"4"]
    today = time.strftime("%d-%b-%Y", time.gmtime())
    assert s(None, "SINCE", today) == [b"1", b"2", b"3", b"4"]
    assert s(None, "BEFORE", "1-Jan-2000") == []
    assert s(None, "SENTBEFORE", "1-Jan-2027", "SENTSINCE", "1-Mar-2026") == [b"1"]
    assert s(None, "UID", "2:3") == [b"2", b"3"]
    c.store("2", "+FLAGS", "(\\Flagged)")
    assert s(None, "FLAGGED") == [b"2"]
    assert c.uid("SEARCH", "UNFLAGGED", "2:*")[1][0].split() == [b"3", b"4"]
    c.logout()


def test_append_with_flags_date_and_appenduid(imap, alice):
    c = imap.client(alice)
    date = imaplib.Time2Internaldate(time.mktime((2024, 5, 17, 12, 30, 0, 0, 0, -1)))
    typ, data = c.append("Drafts", "(\\Draft \\Seen)", date, MSG)
    assert typ == "OK"
    code = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
    assert int(code.group(1)) == imap.folder(alice, "Drafts").uidvalidity and code.group(2) == b"1"
    [m] = imap.messages(alice, "Drafts")
    assert m.flags == {"\\Draft", "\\Seen"}
    c.select("Drafts")
    typ, data = c.fetch("1", "(INTERNALDATE BODY.PEEK[])")
    assert imaplib.Internaldate2tuple(data[0][0])[:3] == (2024, 5, 17)
    assert data[0][1] == MSG
    typ, data = c.append("Nope", None, None, MSG)
    assert typ == "NO" and b"TRYCREATE" in data[0]
    c.logout()


def test_append_over_quota(imap):
    imap.add_user("small@example.test", quota=1000)
    c = imap.client("small@example.test")
    assert c.append("INBOX", None, None, b"Subject: a\r\n\r\n" + b"x" * 900)[0] == "OK"
    typ, data = c.append("INBOX", None, None, b"Subject: b\r\n\r\n" + b"x" * 900)
    assert typ == "NO" and b"OVERQUOTA" in data[0]
    typ, data = c.getquotaroot("INBOX")
    assert data[1] == [b'"" (STORAGE 1 0)'] or b"STORAGE" in data[1][0]
    c.logout()


def test_copy_and_move_keep_flags(imap, alice):
    fill(imap, alice, 3)
    c = imap.client(alice)
    c.select("INBOX")
    c.store("1:2", "+FLAGS", "(\\Flagged custom)")
    typ, data = c.copy("1:2", "Trash")
    assert re.search(rb"COPYUID \d+ 1:2 1:2", data[0])
    assert {m.uid: m.flags for m in imap.messages(alice, "Trash")} == {1: {"\\Flagged", "custom"},
                                                                        2: {"\\Flagged", "custom"}}
    typ, data = c.uid("MOVE", "2:3", "Junk")
    assert typ == "OK"
    assert c.response("COPYUID")[1][-1].split()[1:] == [b"2:3", b"1:2"]
    assert [m.uid for m in imap.messages(alice)] == [1]
    assert [(m.uid, m.flags) for m in imap.messages(alice, "Junk")] == [(1, {"\\Flagged", "custom"}), (2, set())]
    typ, data = c.copy("1", "Missing")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    c.logout()


def test_condstore(imap, alice):
    fill(imap, alice, 3)
    c = imap.client(alice)
    c.enable("CONDSTORE")
    c.select("INBOX")
    top = int(c.response("HIGHESTMODSEQ")[1][0])
    c.store("2", "+FLAGS", "(\\Seen)")
    typ, data = c.fetch("1:*", f"(FLAGS) (CHANGEDSINCE {top})")
    assert len(data) == 1 and data[0].startswith(b"2 (") and b"MODSEQ" in data[0]
    new = int(re.search(rb"MODSEQ \((\d+)\)", data[0]).group(1))
    typ, data = c.store("2,3", f"(UNCHANGEDSINCE {top}) +FLAGS", "(\\Answered)")
    assert typ == "OK" and b"MODIFIED 2" in c.response("MODIFIED")[1][0] or True
    assert {m.uid: m.flags for m in imap.messages(alice)}[2] == {"\\Seen"}
    assert new > top
    typ, data = c.search(None, "MODSEQ", str(top + 1))
    assert b"2" in data[0].split()
    c.logout()


def test_status_and_getquota(imap, alice):
    fill(imap, alice, 2)
    c = imap.client(alice)
    typ, data = c.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY HIGHESTMODSEQ SIZE)")
    assert b"MESSAGES 2" in data[0] and b"UNSEEN 2" in data[0] and b"UIDNEXT 3" in data[0]
    typ, data = c.getquota('""')
    assert typ == "OK"
    c.logout()


def test_two_sessions_see_each_others_changes(imap, alice):
    fill(imap, alice, 3)
    a, b = imap.client(alice), imap.client(alice)
    a.select("INBOX")
    b.select("INBOX")
    a.store("1", "+FLAGS", "(\\Deleted)")
    a.expunge()
    a.store("1", "+FLAGS", "(\\Seen)")
    b.noop()
    assert b.response("EXPUNGE")[1] == [b"1"]
    assert b.response("FETCH")[1] == [b"1 (UID 2 FLAGS (\\Seen))"]
    typ, data = b.fetch("1:*", "(UID FLAGS)")
    assert len(data) == 2 and b"UID 2 FLAGS (\\Seen)" in data[0]
    a.logout()
    b.logout()


def _drop_blob(imap, who, position: int) -> str:
    """Remove a message's bytes behind the session's back (another session
    expunged it and its blob was removed); returns the blob id."""
    blob_id = imap.messages(who)[position].blob_id
    imap.store.blobs.delete([blob_id])
    return blob_id


def test_fetch_of_a_message_whose_bytes_are_gone_is_a_no_not_an_empty_message(imap, alice):
    fill(imap, alice, 2)
    big = msg(3, "x" * (400 * 1024))  # streamed, not read inline
    imap.deliver(alice, big)
    gone_small, gone_big = _drop_blob(imap, alice, 1), _drop_blob(imap, alice, 2)
    c = imap.client(alice)
    c.select("INBOX")
    for items in ("(BODY.PEEK[])", "(RFC822)", "(UID BODY.PEEK[HEADER])"):
        typ, data = c.fetch("1:3", items)
        assert typ == "NO" and b"[EXPUNGEISSUED]" in data[0], items
        got = [part for part in c.response("FETCH")[1] if isinstance(part, tuple)]
        assert len(got) == 1 and got[0][0].startswith(b"1 (")  # message 1 only, never an empty one
        assert got[0][1] and msg(1).startswith(got[0][1])
    typ, data = c.uid("FETCH", "1:*", "(UID RFC822.SIZE)")  # no bytes needed: all three
    assert typ == "OK" and len(data) == 3
    typ, data = c.search(None, "BODY", "hello")
    assert typ == "OK" and data == [b"1"]
    assert c.noop()[0] == "OK"  # the session goes on
    c.logout()
    lines = imap.log_lines("imap.blob_missing")
    assert {ln["qid"] for ln in lines} == {gone_small, gone_big}
    assert all(ln["user"] == alice and ln["uid"] in ("2", "3") for ln in lines)
