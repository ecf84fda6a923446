"""The console script: first stdout line is the base URL; SIGTERM stops it cleanly."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import requests

from .conftest import headers


def _run(argv: list[str]) -> None:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and not base_url.endswith(":0")
        r = requests.get(base_url + "/api/metrics", headers=headers(), timeout=10)
        assert r.status_code == 200 and len(r.json()["data"]) == 200
        assert requests.get(base_url + "/api/metrics", headers=headers(key="pk_deny_0123456789"), timeout=10).status_code == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert "listening on" in proc.stderr.read()


def test_console_script():
    script = shutil.which("klaviyo-emulator") or str(__import__("pathlib").Path(sys.executable).with_name("klaviyo-emulator"))
    _run([script, "--port", "0", "--seed", "3", "--forbidden-key-prefix", "pk_deny_"])


def test_python_dash_m_with_flags():
    _run([sys.executable, "-m", "klaviyo_emulator", "--port", "0", "--size", "tiny", "--profiles", "40", "--events", "2000",
          "--flows", "20", "--flow-actions", "60", "--rate-limits", "on", "--rate-limit-scale", "0.5", "--latency-ms", "1", "--fault-seed", "1", "--error-rate", "0",
          "--forbidden-key-prefix", "pk_deny_"])  # fmt: skip
