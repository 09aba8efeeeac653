"""The Procfile's ``release`` step: ``python -m cli.release``.

``alembic upgrade head``, after the same configuration check every process makes (one plain
message naming every missing variable, exit status 78, no traceback), and one line on success
saying which revision the database is at, so a deploy log shows it.
"""

from __future__ import annotations

from config.startup import settings_or_exit


def main() -> None:
    settings = settings_or_exit()
    from cli.serve import upgrade_database

    revision = upgrade_database(settings.database_url)
    print(f"database is up to date at {revision}", flush=True)


if __name__ == "__main__":
    main()
