"""Which dependencies would a fresh install take newer than constraints.txt pins? (``make test-latest``)

Resolves the project's extras against the index with ``pip install --dry-run --ignore-installed --report``
(nothing is installed) and compares every resolved version with the constraints file. Exit 0 and say so when
nothing differs: the default suite has then already run on exactly these versions and need not run again. Exit 1
with the list when something differs (a newer release, or a package the constraints do not name): the suite must
run on the newest releases. Exit 2 when the resolution itself fails (no index): the caller runs the suite anyway.

    python .ci/drift.py constraints.txt '.[test,notebooks]'
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[_canonical(name)] = version.strip()
    return out


def resolved(requirement: str) -> dict[str, str]:
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-",
           requirement]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    return {_canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in report["install"]}


def main(argv: list[str]) -> int:
    constraints, requirement = Path(argv[0]), argv[1]
    pins = pinned(constraints)
    try:
        newest = resolved(requirement)
    except (subprocess.CalledProcessError, ValueError, KeyError) as exc:
        print(f"drift: could not resolve the newest releases ({exc}); the suite runs on them anyway")
        return 2
    # the project itself, and the installer's own tools, which `pip freeze` (and so `make constraints`) leaves out
    for name in ("solvable", "pip", "setuptools", "wheel"):
        newest.pop(name, None)
    changed = {n: (pins.get(n), v) for n, v in sorted(newest.items()) if pins.get(n) != v}
    if not changed:
        print(f"drift: none -- the newest releases of all {len(newest)} dependencies are the versions of {constraints}, "
              f"on which the default suite has just run")
        return 0
    print(f"drift: {len(changed)} of {len(newest)} dependencies resolve newer than {constraints}:")
    for name, (old, new) in changed.items():
        print(f"  {name}: {old or 'not pinned'} -> {new}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
