"""``anomalymatch-astro label`` as a real subprocess: prints a tokened URL on 127.0.0.1 and serves."""

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from anomalymatch_astro.cli import main


def start_cli(workdir, *extra):
    """Start ``python -m anomalymatch_astro label`` and return (process, url)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "anomalymatch_astro", "label", "--workdir", workdir, "--page-size", "8", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[\w-]+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"no URL printed: {''.join(lines)}{out}{err}")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()


def test_cli_serves_with_token(workdir):
    proc, url = start_cli(workdir)
    try:
        base, token = url.split("?token=")
        assert len(token) >= 24
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base, timeout=30)
        assert err.value.code == 403
        err.value.close()
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.status == 200 and b"static/app.js" in resp.read()
    finally:
        stop(proc)


def test_cli_errors(tmp_path, capsys):
    assert main(["label", "--workdir", str(tmp_path)]) == 1
    assert "no session" in capsys.readouterr().err
    assert main(["label", "--workdir", str(tmp_path), "--port", "70000"]) == 2


def test_import_is_light():
    code = (
        "import sys, anomalymatch_astro.ui, anomalymatch_astro.cli._label; "
        "heavy = [m for m in ('torch', 'anywidget', 'ipywidgets', 'matplotlib.pyplot') "
        "if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
