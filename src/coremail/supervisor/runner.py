"""One service as an OS process: `python -m coremail.supervisor.runner NAME`.

The runner is the service's manager: it checks the configuration, test-binds
every listener (so "port in use" is reported by name before anything runs),
forks the worker processes, re-forks a worker that dies, and on SIGTERM
passes a graceful stop to the workers. Each worker binds its own SO_REUSEPORT
sockets and runs the service on its own asyncio loop. Readiness (or the
reason for failing) goes to the supervisor as one JSON line on --ready-fd.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path

from ..app import available_services, build_context, create_service
from ..config import ConfigError, load_settings
from ..proto.listen import BindError, address_of, bind_socket

STOP_TIMEOUT = 20.0     # graceful stop: sessions get this long to finish
READY_TIMEOUT = 60.0


def _report(fd: int | None, **msg) -> None:
    line = json.dumps(msg) + "\n"
    if fd is None:
        sys.stdout.write(line)
        sys.stdout.flush()
        return
    try:
        os.write(fd, line.encode())
    except OSError:
        pass


def _die_with_parent(parent: int) -> None:
    """SIGTERM (the graceful stop) when `parent` dies, even by kill -9, so no
    process outlives the one that started it. Exits now if it already died."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    # A parent that died before the prctl sent no signal: we were re-parented.
    if os.getppid() != parent:
        os._exit(1)


# ---------------------------------------------------------------- worker
def _worker(name: str, home: Path, index: int, ready_fd: int, login_key: bytes) -> int:
    ctx = build_context(home, name, index, login_key)
    try:
        return _run_worker(ctx, name, index, ready_fd)
    finally:
        ctx.log.close()   # the worker leaves by os._exit: write the queued lines first


def _run_worker(ctx, name: str, index: int, ready_fd: int) -> int:
    service = create_service(name, ctx)
    addr = ctx.settings.listen.address
    try:
        sockets = {s.name: bind_socket(addr, s.port, s.name)
                   for s in service.listeners() if s.port}
    except BindError as e:
        _report(ready_fd, ok=False, worker=index, error=str(e))
        return 1
    return asyncio.run(_serve(ctx, service, sockets, index, ready_fd))


async def _serve(ctx, service, sockets, index: int, ready_fd: int) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start(sockets)
    except Exception as e:  # a start failure must reach the operator as a sentence
        ctx.log.error("service.start_failed", error=repr(e))
        _report(ready_fd, ok=False, worker=index, error=f"{type(e).__name__}: {e}")
        return 1
    watcher = asyncio.create_task(ctx.watch_config())
    _report(ready_fd, ok=True, worker=index,
            addresses={n: address_of(s) for n, s in sockets.items()})
    ctx.log.info("worker.ready", pid=os.getpid())
    await stop.wait()
    ctx.log.info("worker.stopping", pid=os.getpid())
    watcher.cancel()
    try:
        await service.stop(STOP_TIMEOUT)
    finally:
        ctx.close_tracer()
        ctx.store.close()
    ctx.log.info("worker.stopped", pid=os.getpid())
    return 0


# --------------------------------------------------------------- manager
class Manager:
    def __init__(self, name: str, home: Path, ready_fd: int | None):
        self.name, self.home, self.ready_fd = name, home, ready_fd
        self.children: dict[int, int] = {}   # pid -> worker index
        # One per service start, inherited by every worker (and a re-forked
        # one), never on disk: the workers share the login cache with it.
        self.login_key = secrets.token_bytes(32)
        self.stopping = False

    def _fork(self, index: int, pipe_w: int, probes: list) -> int:
        # Forked from the main thread only: PDEATHSIG fires when the forking thread exits.
        manager = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _die_with_parent(manager)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                for s in probes:
                    s.close()
                code = _worker(self.name, self.home, index, pipe_w, self.login_key)
            except BaseException as e:  # noqa: BLE001 - the worker must never return into the manager
                _report(pipe_w, ok=False, worker=index, error=f"{type(e).__name__}: {e}")
                import traceback
                traceback.print_exc()
            finally:
                os._exit(code)
        self.children[pid] = index
        return pid

    def run(self) -> int:
        try:
            settings = load_settings(self.home)
        except ConfigError as e:
            _report(self.ready_fd, ok=False, error=str(e))
            return 2
        if self.name not in available_services():
            _report(self.ready_fd, ok=False, error=f"unknown service {self.name!r}")
            return 2
        workers = getattr(settings.workers, self.name, 1)
        probe_ctx = build_context(self.home, self.name)
        specs = create_service(self.name, probe_ctx).listeners()
        probe_ctx.store.close()
        try:
            probes = [bind_socket(settings.listen.address, s.port, s.name)
                      for s in specs if s.port]
        except BindError as e:
            _report(self.ready_fd, ok=False, error=str(e))
            return 1
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        pipe_r, pipe_w = os.pipe()
        for i in range(workers):
            self._fork(i, pipe_w, probes)
        ok, addresses, error = self._await_ready(pipe_r, workers)
        for s in probes:
            s.close()
        if not ok:
            self._stop_children()
            _report(self.ready_fd, ok=False, error=error)
            return 1
        _report(self.ready_fd, ok=True, pid=os.getpid(), workers=workers, addresses=addresses)
        if self.ready_fd is not None:
            os.close(self.ready_fd)
            self.ready_fd = None
        return self._watch(pipe_r, pipe_w)

    def _read_lines(self, fd: int, buf: bytearray, timeout: float) -> list[dict]:
        import select
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return []
        buf.extend(os.read(fd, 65536))
        out = []
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def _await_ready(self, pipe_r: int, workers: int):
        buf = bytearray()
        ready: dict[int, dict] = {}
        deadline = time.monotonic() + READY_TIMEOUT
        while len(ready) < workers and time.monotonic() < deadline and not self.stopping:
            for msg in self._read_lines(pipe_r, buf, 0.2):
                if not msg.get("ok"):
                    return False, {}, msg.get("error", "a worker failed to start")
                ready[msg["worker"]] = msg.get("addresses", {})
            self._reap(restart=False)
            if len(self.children) < workers and len(ready) < workers:
                return False, {}, "a worker exited during start (see its log)"
        if len(ready) < workers:
            return False, {}, "workers did not become ready in time"
        return True, ready.get(0, {}), None

    def _on_term(self, _signum, _frame) -> None:
        self.stopping = True

    def _reap(self, restart: bool, pipe_w: int | None = None) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            index = self.children.pop(pid, None)
            if index is None:
                continue
            if restart and not self.stopping and pipe_w is not None:
                print(f"worker {index} (pid {pid}) exited with status {status}; restarting",
                      file=sys.stderr, flush=True)
                time.sleep(0.5)  # a crash loop must not spin the CPU
                self._fork(index, pipe_w, [])

    def _watch(self, pipe_r: int, pipe_w: int) -> int:
        buf = bytearray()
        while not self.stopping:
            self._read_lines(pipe_r, buf, 0.2)  # drain readiness of re-forked workers
            self._reap(restart=True, pipe_w=pipe_w)
        self._stop_children()
        return 0

    def _stop_children(self) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT + 5
        while self.children and time.monotonic() < deadline:
            self._reap(restart=False)
            time.sleep(0.05)
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap(restart=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="coremail-runner")
    p.add_argument("service")
    p.add_argument("--home", required=True)
    p.add_argument("--ready-fd", type=int, default=None)
    p.add_argument("--parent-pid", type=int, default=None,
                   help="The supervisor: this runner and its workers stop when it dies.")
    a = p.parse_args(argv)
    if a.parent_pid is not None:
        _die_with_parent(a.parent_pid)
    return Manager(a.service, Path(a.home), a.ready_fd).run()


if __name__ == "__main__":
    sys.exit(main())
