"""Time-based one-time passwords (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps), the
codes of authenticator apps, computed with pyotp. The device rows and their state changes are
in :mod:`carina.accounts.models` and :mod:`carina.accounts.actions`."""

from __future__ import annotations

import time
from typing import Any

import pyotp

#: The issuer shown in the authenticator app next to the account name.
ISSUER = "Carina PACS"
#: Codes of the previous and the next step are accepted too (clock drift, slow typing).
DRIFT_STEPS = 1


def new_secret() -> str:
    """A random 160-bit secret, base32 (what authenticator apps expect)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, user: Any) -> str:
    """The ``otpauth://totp/…`` URI an authenticator app reads (as a QR code or typed)."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.get_username(), issuer_name=ISSUER)


def matching_step(secret: str, code: str, *, after: int, at: float | None = None) -> int | None:
    """The time step (RFC 6238 4.2, ``T``) whose code is ``code``, within the accepted drift
    and later than step ``after`` (so that a code is never accepted twice); else ``None``."""
    code = "".join(code.split())
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if at is None else at
    current = int(now // totp.interval)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > after and pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
