"""The log writer: events from any thread come out whole and in order,
written by one thread, and close() writes what is still queued."""
from __future__ import annotations

import io
import threading

from coremail.obs.log import Log, LogWriter, parse_line


def test_lines_from_many_threads_are_whole_and_in_order_per_thread():
    buf = io.StringIO()
    log = Log("smtp", buf, writer=LogWriter(buf))

    def work(t):
        for i in range(500):
            log.bind(sid=f"t{t}").info("smtp.message", qid=f"{t}-{i}", reason="a b=c")
    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log.close()
    lines = [parse_line(x) for x in buf.getvalue().splitlines()]
    assert len(lines) == 2000 and all(d["reason"] == "a b=c" for d in lines)
    for t in range(4):
        mine = [int(d["qid"].split("-")[1]) for d in lines if d["sid"] == f"t{t}"]
        assert mine == list(range(500))


def test_the_caller_does_not_wait_for_the_write():
    gate = threading.Event()

    class Slow(io.StringIO):
        def write(self, s):
            gate.wait(5)
            return super().write(s)
    out = Slow()
    log = Log("imap", out, writer=LogWriter(out))
    log.info("imap.login", user="amy")     # returns although the file blocks
    log.info("imap.logout", user="amy")
    assert out.getvalue() == ""
    gate.set()
    log.close()
    assert [parse_line(x)["event"] for x in out.getvalue().splitlines()] == [
        "imap.login", "imap.logout"]
