"""The sweep store: one JSON file per finished (or failed) point, claimed with a lock file while it is computed."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ._json import jsonable

__all__ = ["Store", "canonical", "json_result", "point_key"]

_FORMAT = "solvable.sweep-point/1"


def canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"sweep parameters must be finite; got {v}")
        return int(v) if v.is_integer() and abs(v) < 2**53 else v  # 1 and 1.0 are the same point
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items())}
    raise TypeError(f"sweep parameters must be numbers, strings, booleans or lists of them; got {type(value).__name__}")


def point_key(task: str, params: Mapping[str, Any]) -> str:
    """Stable hash of a task identity and its parameters (key order and int/float spelling do not matter)."""
    canon = json.dumps({"task": task, "params": canonical(dict(params))}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:24]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's live process
        return True
    return True


@dataclass(frozen=True)
class Store:
    """A directory of finished points, one JSON file each, and the lock files of points being computed."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        self.path.mkdir(parents=True, exist_ok=True)

    def file(self, key: str) -> Path:
        return self.path / f"{key}.json"

    def lock(self, key: str) -> Path:
        return self.path / f"{key}.lock"

    def has(self, key: str) -> bool:
        return self.file(key).exists()

    def failed(self, key: str) -> bool:
        return self.has(key) and self.read(key).get("status") == "failed"

    def claim(self, key: str) -> bool:
        """Take the exclusive right to compute ``key``; False if it is stored or another live process holds it."""
        if self.has(key):
            return False
        me = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.lock(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._stale(key):
                    return False
                self.lock(key).unlink(missing_ok=True)  # its process died: take the point over
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
            if self.has(key):  # finished by its previous holder just before we took the lock
                self.release(key)
                return False
            return True
        return False

    def _stale(self, key: str) -> bool:
        try:
            host, pid = self.lock(key).read_text().split()
        except (OSError, ValueError):
            return False  # being written right now
        return host == socket.gethostname() and not _alive(int(pid))

    def release(self, key: str) -> None:
        self.lock(key).unlink(missing_ok=True)

    def write(self, key: str, task: str, params: Mapping[str, Any], result: Mapping[str, Any] | None = None, *,
              error: str | None = None) -> None:
        """Store a finished point (``result``) or a failed one (``error``: its traceback), then release its lock."""
        doc = {"format": _FORMAT, "task": task, "params": canonical(dict(params)),
               "status": "failed" if error is not None else "ok",
               "result": {} if result is None else json_result(result)}
        if error is not None:
            doc["error"] = error
        final = self.file(key)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, sort_keys=True))
        os.replace(tmp, final)  # atomic: a reader sees the whole point or none of it
        self.release(key)

    def read(self, key: str) -> dict[str, Any]:
        """One stored point (``params``, ``status``, ``result``); a malformed file raises ValueError."""
        try:
            doc = json.loads(self.file(key).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read sweep point {self.file(key)}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT or not isinstance(doc.get("result"), dict):
            raise ValueError(f"{self.file(key)} is not a {_FORMAT} file")
        return doc

    def records(self) -> list[dict[str, Any]]:
        """Every stored point as one flat record (parameters and results side by side)."""
        out = []
        for f in sorted(self.path.glob("*.json")):
            doc = self.read(f.stem)
            out.append({**doc["params"], **doc["result"], "task": doc["task"], "key": f.stem,
                        "sweep_status": doc.get("status", "ok"), "sweep_error": doc.get("error", "")})
        return out


def json_result(x: Any) -> Any:
    try:
        return jsonable(x, strict=True)
    except TypeError as exc:
        raise TypeError(f"a sweep task must return numbers, strings or lists: {exc}") from exc
