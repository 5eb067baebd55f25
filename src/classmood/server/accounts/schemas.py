"""API shapes of the accounts feature."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from classmood.server.validation import InputModel, PersonName

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(value: str) -> str:
    """Lower-case and check an e-mail address (a light check: the address is a login name here).

    >>> normalise_email(" Ada@Example.org ")
    'ada@example.org'
    """
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise ValueError("not an e-mail address")
    return email


class Credentials(InputModel):
    """E-mail and password, for the login and token endpoints."""

    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)

    _email = field_validator("email")(normalise_email)


class UserCreate(Credentials):
    """A new teacher or admin (admin only)."""

    password: str = Field(min_length=8, max_length=1024)
    name: PersonName
    role: Literal["teacher", "admin"] = "teacher"


class UserPublic(BaseModel):
    """A user as the API shows it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    role: str


class LoginOut(BaseModel):
    """Answer of ``POST /api/auth/login``."""

    user: UserPublic
    csrf_token: str


class TokenOut(BaseModel):
    """Answer of ``POST /api/auth/token``."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
