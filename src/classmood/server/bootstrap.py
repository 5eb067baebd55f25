"""What ``classmood serve`` does before the app starts: migrate, and create the first accounts.

>>> # created = prepare_server(load_settings())   # [(role, email, password), ...] on an empty database
"""

from __future__ import annotations

from classmood.config import Settings
from classmood.server.accounts.service import bootstrap_users
from classmood.server.db import open_database
from classmood.server.security import Passwords, generate_password


def passwords_of(settings: Settings) -> Passwords:
    """The password hasher the settings ask for."""
    return Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)


def prepare_server(settings: Settings) -> list[tuple[str, str, str]]:
    """Migrate the database and, when it has no users, create the first admin and a demo teacher.

    Returns (role, email, password) of each account created (empty after the first start).
    """
    with open_database(settings) as db:
        return bootstrap_users(db, passwords=passwords_of(settings), admin_email=settings.admin_email,
                               admin_password=settings.admin_password, generate=generate_password)
