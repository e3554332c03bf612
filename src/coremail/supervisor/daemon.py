"""The supervisor: runs each service as its own process (supervisor.runner),
restarts one that crashes with a growing back-off, and answers `status /
start / stop / restart / shutdown` over a Unix socket in DIR/run.

Protocol on the socket: one JSON request line, one JSON reply line
(see supervisor.control for the client side).
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..app import available_services
from ..obs.log import Log
from . import homelock
from .heartbeat import Heartbeat

SOCKET_NAME = "supervisor.sock"
PID_NAME = "supervisor.pid"
BACKOFF_MAX = 60.0
READY_TIMEOUT = 90.0


@dataclass
class ServiceState:
    name: str
    state: str = "stopped"       # stopped | starting | running | backoff | failed
    proc: asyncio.subprocess.Process | None = None
    addresses: dict = field(default_factory=dict)
    wanted: bool = False
    backoff: float = 1.0
    started_at: float = 0.0
    restarts: int = 0
    error: str = ""
    watcher: asyncio.Task | None = None

    def view(self) -> dict:
        return {"name": self.name, "state": self.state,
                "pid": self.proc.pid if self.proc and self.proc.returncode is None else None,
                "addresses": self.addresses, "restarts": self.restarts, "error": self.error,
                "started_at": self.started_at if self.state == "running" else None}


class Supervisor:
    def __init__(self, home: Path):
        self.home = Path(home)
        self.run_dir = self.home / "run"
        self.log_dir = self.home / "logs"
        self.log = Log("supervisor")
        self.services = {n: ServiceState(n) for n in available_services()}
        self.done = asyncio.Event()
        self._lock = asyncio.Lock()
        self.lock_fd: int | None = None   # the home's lock (supervisor.homelock), held for life
        self.beat: Heartbeat | None = None  # with a shared store: this node in the nodes table

    # ---------------------------------------------------------- services
    async def _spawn(self, st: ServiceState) -> dict:
        """Start one service process and wait until it is ready or failed."""
        r, w = os.pipe()
        logf = open(self.log_dir / f"{st.name}.log", "ab", buffering=0)
        st.state, st.error, st.addresses = "starting", "", {}
        # The runner inherits the home's lock (so a set outliving us is seen by the
        # next `start`) and dies with us: it sets PR_SET_PDEATHSIG, which fires when
        # the forking *thread* exits; we fork from the event loop's, the main thread.
        fds = (w,) if self.lock_fd is None else (w, self.lock_fd)
        try:
            st.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "coremail.supervisor.runner", st.name,
                "--home", str(self.home), "--ready-fd", str(w),
                "--parent-pid", str(os.getpid()),
                pass_fds=fds, stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=logf)
        finally:
            os.close(w)
            logf.close()
        (self.run_dir / f"{st.name}.pid").write_text(f"{st.proc.pid}\n")
        msg = await self._read_ready(r, st.proc)
        if msg.get("ok"):
            st.state, st.addresses, st.started_at = "running", msg.get("addresses", {}), time.time()
            self.log.info("service.ready", service=st.name, pid=st.proc.pid,
                          addresses=",".join(f"{k}={v}" for k, v in st.addresses.items()))
        else:
            st.error = msg.get("error") or "exited during start"
            st.state = "failed"
            self.log.error("service.failed", service=st.name, error=st.error)
            if st.proc.returncode is None:
                st.proc.terminate()
            await st.proc.wait()
        return msg

    async def _read_ready(self, fd: int, proc) -> dict:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
        try:
            line = await asyncio.wait_for(reader.readline(), READY_TIMEOUT)
        except asyncio.TimeoutError:
            line = b""
        finally:
            transport.close()
        if not line:
            await asyncio.sleep(0.1)
            code = proc.returncode
            return {"ok": False, "error": f"exited with status {code} during start (see logs)"
                    if code is not None else "did not become ready in time"}
        try:
            return json.loads(line)
        except ValueError:
            return {"ok": False, "error": "sent an unreadable readiness line"}

    async def _watch(self, st: ServiceState) -> None:
        """Restart a service that exits while it is wanted, with back-off."""
        while st.wanted:
            proc = st.proc
            if proc is None:
                return
            code = await proc.wait()
            if not st.wanted:
                return
            ran = time.time() - st.started_at
            if ran > 60:
                st.backoff = 1.0
            st.state, st.restarts = "backoff", st.restarts + 1
            self.log.warning("service.exited", service=st.name, status=code,
                             restart_in=f"{st.backoff:.0f}s")
            await asyncio.sleep(st.backoff)
            st.backoff = min(st.backoff * 2, BACKOFF_MAX)
            if not st.wanted:
                return
            await self._spawn(st)  # a failed start leaves an exited proc: back off again

    async def start(self, name: str) -> dict:
        st = self.services[name]
        if st.proc is not None and st.proc.returncode is None and st.state == "running":
            return {"name": name, "ok": True, "already": True, "addresses": st.addresses}
        st.wanted = True
        msg = await self._spawn(st)
        if msg.get("ok"):
            if st.watcher is None or st.watcher.done():
                st.watcher = asyncio.create_task(self._watch(st))
            return {"name": name, "ok": True, "addresses": st.addresses}
        st.wanted = False
        return {"name": name, "ok": False, "error": st.error}

    async def stop(self, name: str) -> dict:
        st = self.services[name]
        st.wanted = False
        if st.watcher:
            st.watcher.cancel()
        proc = st.proc
        if proc is not None and proc.returncode is None:
            st.state = "stopping"
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 40)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        st.state, st.addresses, st.proc = "stopped", {}, None
        try:
            (self.run_dir / f"{name}.pid").unlink()
        except FileNotFoundError:
            pass
        self.log.info("service.stopped", service=name)
        return {"name": name, "ok": True}

    # ----------------------------------------------------------- control
    async def handle(self, req: dict) -> dict:
        cmd = req.get("cmd")
        names = list(self.services)
        target = req.get("service")
        if target is not None and target not in self.services:
            return {"ok": False, "error": f"unknown service {target!r}; valid names: "
                    + ", ".join(names)}
        if cmd == "status":
            # Not behind the lock: `coremail start` asks this to tell a live supervisor
            # from a dead one and must get an answer while a long start is running.
            return {"ok": True, "pid": os.getpid(),
                    "services": [s.view() for s in self.services.values()]}
        try:
            return await self._command(cmd, target, names)
        finally:
            if self.beat is not None:
                self.beat.poke()   # the nodes table shows the change at once

    async def _command(self, cmd, target, names) -> dict:
        async with self._lock:
            if cmd == "start":
                results = [await self.start(n) for n in ([target] if target else names)]
                return {"ok": all(r["ok"] for r in results), "results": results}
            if cmd == "stop" and target:
                return {"ok": True, "results": [await self.stop(target)]}
            if cmd == "restart" and target:
                await self.stop(target)
                r = await self.start(target)
                return {"ok": r["ok"], "results": [r]}
            if cmd == "shutdown":
                for n in reversed(names):
                    await self.stop(n)
                self.done.set()
                return {"ok": True}
        return {"ok": False, "error": f"bad request {cmd!r}"}

    async def _client(self, reader, writer) -> None:
        try:
            line = await reader.readline()
            try:
                req = json.loads(line)
            except ValueError:
                req = {}
            reply = await self.handle(req)
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def serve(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Before touching the socket or the pid file: they may belong to a live set.
        try:
            self.lock_fd = homelock.hold(self.home)
        except homelock.Busy as e:
            self.log.error("supervisor.refused", error=str(e))
            return 1
        sock_path = self.run_dir / SOCKET_NAME
        try:
            sock_path.unlink()
        except FileNotFoundError:
            pass
        server = await asyncio.start_unix_server(self._client, path=str(sock_path))
        os.chmod(sock_path, 0o600)
        (self.run_dir / PID_NAME).write_text(f"{os.getpid()}\n")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(
                self.handle({"cmd": "shutdown"})))
        self.log.info("supervisor.ready", pid=os.getpid(), services=",".join(self.services))
        beat = Heartbeat(self.home, self.log, lambda: [s.view() for s in self.services.values()])
        beating = None
        if await asyncio.to_thread(beat.open):
            self.beat, beating = beat, loop.create_task(beat.run())
        await self.done.wait()
        server.close()
        if beating is not None:
            beating.cancel()
            await asyncio.to_thread(beat.close)
        for p in (sock_path, self.run_dir / PID_NAME):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        self.log.info("supervisor.exit")
        return 0


def main(argv: list[str] | None = None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="coremail-supervisor")
    p.add_argument("--home", required=True)
    a = p.parse_args(argv)
    return asyncio.run(Supervisor(Path(a.home)).serve())


if __name__ == "__main__":
    sys.exit(main())
