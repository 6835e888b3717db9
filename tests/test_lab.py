"""`make notebooks`: JupyterLab serves the py:percent notebooks as notebooks, and opens them so by default."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow  # 9 s: starts a JupyterLab server; in the slow step
def test_jupyterlab_opens_the_notebooks_as_notebooks(tmp_path):
    pytest.importorskip("jupyterlab")
    settings = tmp_path / "lab-settings"
    shutil.copytree(ROOT / ".jupyter-lab-settings", settings)  # what `make notebooks` does
    port, token = _free_port(), "solvable-test"
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    lab = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
                            f"--ServerApp.token={token}", f"--notebook-dir={ROOT / 'notebooks'}"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"{base}/api/status?token={token}")
                break
            except OSError:
                assert lab.poll() is None and time.monotonic() < deadline, "JupyterLab did not start"
                time.sleep(0.3)
        plugin = _get(f"{base}/lab/api/settings/@jupyterlab/docmanager-extension:plugin?token={token}")
        assert plugin["settings"]["defaultViewers"]["python"] == "Jupytext Notebook"
        for path in sorted((ROOT / "notebooks").glob("*.py")):
            model = _get(f"{base}/api/contents/{path.name}?type=notebook&token={token}")
            assert model["type"] == "notebook" and len(model["content"]["cells"]) > 3, path.name
    finally:
        lab.terminate()
        lab.wait(timeout=30)
