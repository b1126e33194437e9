"""Who is signed in, and the checks every UI request passes: a session, the CSRF token on
every POST, the admin role where a page needs it.

The session cookie is HttpOnly and SameSite=Lax, and Secure when the request came over https.
The CSRF token is per session; forms carry it in a hidden field and htmx sends it as a header.
The sign-in form, before any session exists, is protected by a double-submit cookie.
"""

import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from partnerbill.core.db import transaction
from partnerbill.users.service import SESSION_LIFETIME, SignedIn, session_user

SESSION_COOKIE = "partnerbill_session"
SIGN_IN_COOKIE = "partnerbill_sign_in_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_FIELDS = 200


class SignInRequired(Exception):
    """No valid session: the page sends the browser to the sign-in page."""


class Forbidden(Exception):
    """403: a missing or wrong CSRF token, or a page for admins only."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def signed_in(request: Request) -> SignedIn:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired
    async with transaction() as conn:
        user = await session_user(conn, token)
    if user is None:
        raise SignInRequired
    return user


def require_admin(user: SignedIn) -> None:
    if not user.is_admin:
        raise Forbidden("Only an admin may manage features and billing settings.")


def _same(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


async def checked_form(request: Request, user: SignedIn) -> FormData:
    """The POSTed form, once its CSRF token (field or header) matches the session's."""
    form = await request.form(max_fields=MAX_FORM_FIELDS)
    given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not _same(user.csrf_token, given if isinstance(given, str) else None):
        raise Forbidden("The form's security token is missing or wrong: reload the page and retry.")
    return form


def sign_in_token(request: Request) -> str:
    """The sign-in form's token: the browser's cookie, or a new one."""
    return request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)


def keep_sign_in_token(response: Response, request: Request, token: str) -> None:
    _set_cookie(response, request, SIGN_IN_COOKIE, token, max_age=3600)


async def checked_sign_in_form(request: Request) -> FormData:
    form = await request.form(max_fields=MAX_FORM_FIELDS)
    given = form.get(CSRF_FIELD)
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not expected or not _same(expected, given if isinstance(given, str) else None):
        raise Forbidden("The form's security token is missing or wrong: reload the page and retry.")
    return form


def start_session(response: Response, request: Request, token: str) -> None:
    _set_cookie(
        response, request, SESSION_COOKIE, token, max_age=int(SESSION_LIFETIME.total_seconds())
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/ui")


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/" if name == SESSION_COOKIE else "/ui",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
