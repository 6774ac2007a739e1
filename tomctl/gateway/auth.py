"""Browser tokens: JWTs checked with pyjwt, each accepted once.

A token must carry ``exp``, ``iat``, ``jti`` and the configured audience, live no longer than
TOM_JWT_MAX_LIFETIME_S, and be signed HS256 with TOM_JWT_SECRET or RS256 with
TOM_JWT_PUBLIC_KEY (the algorithm is fixed by which key is configured, never taken from the
token). Its ``jti`` is remembered until the token expires, so a captured token cannot open
a second conversation; the memory is the process's, which outlives any page reload.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import jwt

from tomctl.config import GatewaySettings
from tomctl.errors import ConfigError

CLOCK_SKEW_S = 30


class TokenRejected(Exception):
    """The reason is safe to show the client: it names the check, not the secret."""


class ReplayGuard:
    """Each jti once, until its token's expiry (then it would fail the exp check anyway)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def claim(self, jti: str, expires_at: float, now: float) -> bool:
        if len(self._seen) > 1000:
            self._seen = {key: exp for key, exp in self._seen.items() if exp + CLOCK_SKEW_S > now}
        if jti in self._seen:
            return False
        self._seen[jti] = expires_at
        return True


class TokenVerifier:
    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._replays = ReplayGuard()
        if settings.jwt_public_key:
            self._key, self._algorithm = _public_key(settings.jwt_public_key), "RS256"
        elif settings.jwt_secret:
            self._key, self._algorithm = settings.jwt_secret, "HS256"
        else:
            self._key, self._algorithm = None, ""

    @property
    def required(self) -> bool:
        return not self._settings.dev_allow_no_jwt or self._key is not None

    def check_start(self) -> None:
        """Refuse to run a gateway that anyone on the network could use without a token."""
        if self._key is None and not self._settings.dev_allow_no_jwt:
            raise ConfigError("the browser gateway needs TOM_JWT_SECRET or TOM_JWT_PUBLIC_KEY "
                              "(or TOM_DEV_ALLOW_NO_JWT=true on a loopback TOM_GATEWAY_HOST)")
        if self._settings.dev_allow_no_jwt and not _loopback(self._settings.host):
            raise ConfigError("TOM_DEV_ALLOW_NO_JWT=true needs a loopback TOM_GATEWAY_HOST, "
                              f"not {self._settings.host!r}")

    def verify(self, token: str, now: float | None = None) -> dict:
        """The token's claims, or TokenRejected. An empty token passes only in dev mode."""
        now = time.time() if now is None else now
        if not token:
            if self._key is None or self._settings.dev_allow_no_jwt:
                return {}
            raise TokenRejected("token missing")
        if self._key is None:
            raise TokenRejected("tokens are not configured")
        try:
            claims = jwt.decode(token, self._key, algorithms=[self._algorithm],
                                audience=self._settings.jwt_audience, leeway=CLOCK_SKEW_S,
                                options={"require": ["exp", "iat", "jti", "aud"]})
        except jwt.ExpiredSignatureError:
            raise TokenRejected("token expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("wrong audience") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("bad signature") from None
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(f"invalid token: {type(exc).__name__}") from None
        if claims["exp"] - claims["iat"] > self._settings.jwt_max_lifetime_s:
            raise TokenRejected("token lives too long")
        if not self._replays.claim(str(claims["jti"]), float(claims["exp"]), now):
            raise TokenRejected("token already used")
        return claims


def mint(settings: GatewaySettings, lifetime_s: int, subject: str = "operator") -> str:
    """An HS256 token for the page (``tomctl token``)."""
    if not settings.jwt_secret:
        raise ConfigError("tomctl token needs TOM_JWT_SECRET")
    if not 0 < lifetime_s <= settings.jwt_max_lifetime_s:
        raise ConfigError(f"lifetime must be between 1 and TOM_JWT_MAX_LIFETIME_S "
                          f"({settings.jwt_max_lifetime_s}) seconds")
    now = int(time.time())
    return jwt.encode({"sub": subject, "aud": settings.jwt_audience, "iat": now,
                       "exp": now + lifetime_s, "jti": secrets.token_hex(16)},
                      settings.jwt_secret, algorithm="HS256")


def _public_key(value: str) -> str:
    if value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        return Path(value).read_text()
    except OSError as exc:
        raise ConfigError(f"TOM_JWT_PUBLIC_KEY={value!r}: {exc.strerror or exc}") from None


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
