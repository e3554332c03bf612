"""Leases, failed logins, nodes and shared files of the memory store (a
mixin of MemoryStore), mirroring store/sql/nodes.py. One process only: not
shared, and no folder change notifications (IDLE polls)."""
from __future__ import annotations

import time
from typing import Sequence

from ..interfaces import NodeState


class MemoryNodes:
    # Provided by MemoryStore.
    _lock: object
    _nodes_data: dict   # leases, failures, nodes, files, web (sessions)

    shared = False

    def _nodes_state(self) -> dict:
        return self._nodes_data

    def lease_acquire(self, name: str, owner: str, until: float,
                      now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self._lock:
            leases = self._nodes_state()["leases"]
            held = leases.get(name)
            if held is not None and held[0] != owner and held[1] >= now:
                return False
            leases[name] = (owner, until)
            return True

    def lease_renew(self, owner: str, until: float) -> int:
        with self._lock:
            leases = self._nodes_state()["leases"]
            mine = [k for k, (o, _) in leases.items() if o == owner]
            for k in mine:
                leases[k] = (owner, until)
            return len(mine)

    def lease_release(self, owner: str, name: str | None = None) -> int:
        with self._lock:
            leases = self._nodes_state()["leases"]
            mine = [k for k, (o, _) in leases.items() if o == owner and name in (None, k)]
            for k in mine:
                del leases[k]
            return len(mine)

    def auth_failure_add(self, ip: str, at: float, forget_before: float) -> None:
        with self._lock:
            st = self._nodes_state()
            st["failures"] = [f for f in st["failures"] if f[1] >= forget_before] + [(ip, at)]

    def auth_failures(self, ip: str, since: float) -> list[float]:
        with self._lock:
            return sorted(at for i, at in self._nodes_state()["failures"]
                          if i == ip and at >= since)

    def auth_failures_clear(self) -> int:
        with self._lock:
            st = self._nodes_state()
            n, st["failures"] = len(st["failures"]), []
            return n

    def node_beat(self, hostname: str, started: float, services: Sequence[dict],
                  now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            self._nodes_state()["nodes"][hostname] = NodeState(
                hostname, started, now, tuple(dict(s) for s in services))

    def node_list(self) -> list[NodeState]:
        with self._lock:
            nodes = self._nodes_state()["nodes"]
            return [nodes[k] for k in sorted(nodes)]

    def shared_file_put(self, name: str, content: bytes, updated: float) -> None:
        with self._lock:
            self._nodes_state()["files"][name] = (bytes(content), float(updated))

    def shared_files(self) -> dict[str, tuple[bytes, float]]:
        with self._lock:
            return dict(self._nodes_state()["files"])

    def web_session_put(self, key: str, user_id: int, csrf: str, expires: float,
                        now: float) -> None:
        with self._lock:
            sessions = self._nodes_state()["web"]
            for k in [k for k, v in sessions.items() if v[2] < now]:
                del sessions[k]
            sessions[key] = (user_id, csrf, expires)

    def web_session_get(self, key: str) -> tuple[int, str, float] | None:
        with self._lock:
            return self._nodes_state()["web"].get(key)

    def web_session_delete(self, key: str) -> None:
        with self._lock:
            self._nodes_state()["web"].pop(key, None)

    def folder_changes(self) -> None:
        return None
