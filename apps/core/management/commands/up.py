from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from apps.accounts.services import demo_user_ensure
from apps.documents.services import corpus_ingest_first_run
from apps.references.services import references_import_first_run
from apps.training.services.loop import loop_bootstrap_queue
from portal.env import env_int, env_str
from portal.launcher import Launcher


class Command(BaseCommand):
    help = "Run the portal with its Celery workers and beat (embedded PostgreSQL and Redis)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=env_str("PORTAL_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=env_int("PORTAL_PORT", 8000, minimum=1))
        parser.add_argument(
            "--no-demo-corpus", action="store_true", help="do not ingest the demo corpus"
        )

    def handle(self, *args: object, **options: Any) -> None:
        db = settings.DATABASES["default"]
        launcher = Launcher(
            host=str(options["host"]),
            port=int(options["port"]),
            var_dir=settings.VAR_DIR,
            database_url=_database_url(db) if settings.EMBEDDED_DATABASE else None,
            redis_url=None if settings.EMBEDDED_REDIS else settings.REDIS_URL,
            log=self.stdout.write,
        )
        launcher.check_port()
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        credentials_file = settings.VAR_DIR / "demo-password.txt"
        login = demo_user_ensure(credentials_file=credentials_file)
        launcher.start_redis()

        def on_ready() -> None:
            queued = imported = 0
            if not options["no_demo_corpus"]:
                queued = corpus_ingest_first_run(folder=settings.DEMO_CORPUS_DIR)
                imported = references_import_first_run(path=settings.DEMO_REFERENCES)
            bootstrap = bool(queued) and settings.LOOP_BOOTSTRAP and loop_bootstrap_queue()
            url = f"http://{launcher.host}:{launcher.port}/"
            self.stdout.write(self.style.SUCCESS(f"\nPlumbline is starting at {url}"))
            if login.password:  # the first start only: it is in no log after that
                self.stdout.write(
                    f"  log in as: {login.username} / {login.password}"
                    f"  (kept in {credentials_file}, readable by you only)"
                )
            else:
                self.stdout.write(
                    f"  log in as: {login.username} (the password first shown is in "
                    f"{credentials_file}, unless changed since)"
                )
            self.stdout.write(f"  data in:   {settings.VAR_DIR}")
            if queued:
                self.stdout.write(
                    f"  ingesting {queued} demo documents from {settings.DEMO_CORPUS_DIR}"
                )
            if imported:
                self.stdout.write(
                    f"  imported {imported} validation references from {settings.DEMO_REFERENCES}"
                )
            if bootstrap:
                self.stdout.write(
                    "  learning from the library once it is ingested (synthetic pairs, SFT): "
                    "the Training page shows its progress; the base model answers meanwhile"
                )
            self.stdout.write("  Ctrl-C stops everything.\n")

        raise SystemExit(launcher.run(on_ready))


def _database_url(db: Mapping[str, object]) -> str:
    from pathlib import Path

    from portal.embedded import EmbeddedPostgres

    return EmbeddedPostgres(socket_dir=Path(str(db["HOST"])), database=str(db["NAME"])).url
