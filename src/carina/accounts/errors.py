"""Why credentials were refused: each error carries a sentence a person can act on (its
``str()``) and a short ``code`` programs can test (docs/accounts.md, "Errors")."""

from __future__ import annotations

import datetime as dt


class CredentialsError(Exception):
    """Credentials were sent but are not valid (wrong password, expired or revoked token,
    a locked account, a missing second factor, HTTP Basic turned off)."""

    code = "invalid_credentials"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class WrongCredentialsError(CredentialsError):
    code = "wrong_credentials"

    def __init__(self) -> None:
        super().__init__("Wrong user name or password.")


class AccountLockedError(CredentialsError):
    """Too many failed sign-ins: password sign-in is refused until ``locked_until``."""

    code = "account_locked"

    def __init__(self, locked_until: dt.datetime) -> None:
        self.locked_until = locked_until
        super().__init__(
            "This account is locked after too many failed sign-ins, until "
            f"{locked_until.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC. Try again then, or ask "
            "an administrator to unlock it."
        )


class SecondFactorRequiredError(CredentialsError):
    code = "otp_required"

    def __init__(self) -> None:
        super().__init__(
            "This account uses an authenticator app: send the 6-digit code it shows now as "
            "'otp' together with the user name and password."
        )


class WrongSecondFactorError(CredentialsError):
    code = "wrong_otp"

    def __init__(self) -> None:
        super().__init__(
            "The authenticator code is wrong or was already used; wait for the next code and "
            "try again."
        )
