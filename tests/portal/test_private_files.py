"""Secret files (the generated SECRET_KEY, the demo password) are readable by their owner
only from their first byte, and of several processes starting at once one key wins.

An audit hook in a fresh interpreter looks into the folder at every file-system event
(open, chmod, rename, link, ...) and records any moment at which a file there holds
content that others may read: ``write_text`` then ``chmod`` shows exactly such a moment.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from portal.private_files import private_file_write
from tests import support

WATCH = r"""
import os, stat, sys
folder = os.environ["WATCH_DIR"]
seen, busy = [], False

def look(event, args):
    global busy
    if busy or not event.startswith(("open", "os.")):
        return
    busy = True
    try:
        for name in os.listdir(folder):
            info = os.stat(os.path.join(folder, name))
            if stat.S_ISREG(info.st_mode) and info.st_size and info.st_mode & 0o077:
                seen.append(f"{event}: {name} {oct(info.st_mode & 0o777)}")
    finally:
        busy = False

os.umask(0o022)
sys.addaudithook(look)
exec(os.environ["RUN"])
print("\n".join(seen) or "private throughout")
"""


def _watched(folder: Path, run: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    environment.update(WATCH_DIR=str(folder), RUN=run, **env)
    result = subprocess.run(
        [sys.executable, "-c", WATCH],
        cwd=support.REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_the_generated_secret_key_is_private_from_its_first_byte(tmp_path: Path):
    verdict = _watched(
        tmp_path,
        "import portal.settings",
        PORTAL_VAR_DIR=str(tmp_path),
        DATABASE_URL="postgresql://nobody@localhost:1/none",  # parsed, never connected to
    )
    assert verdict == "private throughout"
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text()) > 40
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.django_db(transaction=True)
def test_the_demo_password_is_private_and_shown_on_the_first_start_only(tmp_path: Path):
    from django.db import connection

    run = (
        "import django; django.setup()\n"
        "from pathlib import Path\n"
        "from apps.accounts.services import demo_user_ensure\n"
        "path = Path(folder) / 'demo-password.txt'\n"
        "first, again = demo_user_ensure(credentials_file=path), demo_user_ensure(credentials_file=path)\n"
        "assert first.created and first.password and not again.created, (first, again)\n"
        "assert again.password is None, again\n"
        "Path(os.environ['SHOWN']).write_text(first.password)\n"
    )
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    verdict = _watched(
        secrets_dir,
        run,
        DATABASE_URL=support.database_url(connection.settings_dict),
        SHOWN=str(tmp_path / "shown"),
    )
    assert verdict == "private throughout"
    password_file = secrets_dir / "demo-password.txt"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() == (tmp_path / "shown").read_text()


def test_the_first_writer_wins_unless_told_to_replace(tmp_path: Path):
    path = tmp_path / "secret"
    assert private_file_write(path, "first", replace=False) is True
    assert private_file_write(path, "second", replace=False) is False
    assert path.read_text() == "first"
    assert private_file_write(path, "third") is True and path.read_text() == "third"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]
