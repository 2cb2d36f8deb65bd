"""The launcher's supervision through real processes: children that exit, and one that
ignores SIGTERM as a Celery worker in warm shutdown does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests import support

SCRIPT = """
import sys
from pathlib import Path

from portal.launcher import Child, Launcher

out = Path(sys.argv[1])
py = sys.executable


class Fake(Launcher):
    def plan(self):
        return [
            # A web server that ignores SIGINT and SIGTERM (a task that will not finish).
            Child("web", [py, "-c", "import signal, time; "
                  "signal.signal(signal.SIGINT, signal.SIG_IGN); "
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]),
            # A worker that dies at once, each time it is started.
            Child("worker", [py, "-c", f"open({str(out / 'starts')!r}, 'a').write('x'); "
                  "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], restart=True),
        ]


launcher = Fake(host="127.0.0.1", port=0, var_dir=out, database_url=None,
                redis_url="unix:///nowhere", log=lambda m: print(m, flush=True))
sys.exit(launcher.run(on_ready=lambda: print("ready", flush=True)))
"""


def test_a_worker_that_exits_is_restarted_and_ctrl_c_stops_everything_fast(tmp_path: Path):
    log = tmp_path / "launcher.log"
    with log.open("wb") as handle:
        launcher = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tmp_path)],
            cwd=support.REPO,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        starts = tmp_path / "starts"
        # Started, restarted after 1 s, then after 2 s more: a backoff, not a tight loop.
        support.wait_for(
            lambda: starts.exists() and len(starts.read_text()) >= 3,
            timeout=30,
            message=f"restarts:\n{log.read_text()}",
        )
        assert launcher.poll() is None  # the portal went on
        text = log.read_text()
        assert "worker was killed by SIGKILL after 0 s; starting it again in 1 s" in text
        assert "starting it again in 2 s" in text and "starting worker again (restart 2)" in text
        began = time.monotonic()
        os.killpg(launcher.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert launcher.wait(15) == 0
        assert time.monotonic() - began < 8, log.read_text()
        assert "web did not stop within 5 s; killing it." in log.read_text()
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
