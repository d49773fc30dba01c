"""Verifying CI job identity tokens (OIDC ID tokens from GitHub Actions and GitLab CI).

A token is accepted only if its ``alg`` is RS256 or ES256, its ``iss`` is an active trusted
issuer, its ``kid`` names a key that issuer publishes (keys cached; an unknown ``kid`` refreshes
them, at most every ``API_JWKS_MIN_REFRESH_SECONDS``), the key's type fits the ``alg``, the
signature verifies, ``aud`` is the issuer's configured audience, and ``exp``/``nbf``/``iat`` hold
(30 s leeway). Each failure has its own error code.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from django.conf import settings
from django.core.cache import cache

from accessreq.api.schema import text_problem
from accessreq.models import ClaimFormat, TrustedIssuer

ALLOWED_ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 5
JWKS_MAX_BYTES = 256 * 1024


class IdentityRefused(Exception):
    """The CI identity token is refused: ``code`` is stable, ``message`` is for people and
    ``detail`` (never the token) goes into the audit event."""

    def __init__(
        self, code: str, message: str, *, status: int = 401, detail: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.detail = detail or {}


@dataclass(frozen=True)
class CIIdentity:
    """The verified claims of a CI job that trust rules match on, in one shape for both CIs.
    ``ref`` is always a full ref (``refs/heads/main``)."""

    issuer: str
    subject: str
    repository: str
    ref: str
    environment: str
    workflow: str
    run_id: str
    sha: str

    def as_data(self) -> dict[str, str]:
        return asdict(self)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a JWKS URL that redirects is refused, not followed


def jwks_url_allowed(url: str) -> bool:
    """HTTPS, or plain HTTP to a loopback address (a test or a sidecar on the same host)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _fetch_jwks(issuer: TrustedIssuer) -> dict[str, dict[str, Any]]:
    """The issuer's signing keys by ``kid``; raises ``IdentityRefused('jwks_unavailable')``."""
    if not jwks_url_allowed(issuer.jwks_url):
        raise IdentityRefused(
            "jwks_unavailable", "The issuer's key URL must use https.", status=503
        )
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        issuer.jwks_url, headers={"Accept": "application/json", "User-Agent": "Gatehouse"}
    )
    try:
        with opener.open(request, timeout=JWKS_TIMEOUT_SECONDS) as response:
            raw = response.read(JWKS_MAX_BYTES + 1)
        if len(raw) > JWKS_MAX_BYTES:
            raise ValueError("too large")
        document = json.loads(raw)
        keys = document["keys"]
        if not isinstance(keys, list):
            raise ValueError("keys is not a list")
    except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError) as exc:
        raise IdentityRefused(
            "jwks_unavailable",
            f"The issuer's keys could not be read ({type(exc).__name__}); try again shortly.",
            status=503,
        ) from None
    result: dict[str, dict[str, Any]] = {}
    for key in keys:
        if isinstance(key, dict) and isinstance(key.get("kid"), str):
            result[key["kid"]] = key
    return result


def _cache_key(issuer: TrustedIssuer) -> str:
    url_hash = hashlib.sha256(issuer.jwks_url.encode()).hexdigest()[:16]
    return f"gatehouse-jwks:{issuer.pk}:{url_hash}"


def issuer_key(issuer: TrustedIssuer, kid: str) -> dict[str, Any]:
    """The JWK ``kid`` of ``issuer``, from the cache or a fresh fetch when it is not there."""
    key = _cache_key(issuer)
    cached: dict[str, Any] | None = cache.get(key)
    if cached and kid in cached["keys"]:
        return dict(cached["keys"][kid])
    if cached and time.time() - cached["fetched_at"] < settings.API_JWKS_MIN_REFRESH_SECONDS:
        raise IdentityRefused("unknown_kid", f"The issuer publishes no key {kid!r}.")
    try:
        keys = _fetch_jwks(issuer)
    except IdentityRefused:
        if cached:  # the issuer is down: keep the keys we had, and the kid is still unknown
            raise IdentityRefused("unknown_kid", f"The issuer publishes no key {kid!r}.") from None
        raise
    cache.set(
        key, {"keys": keys, "fetched_at": time.time()}, timeout=settings.API_JWKS_CACHE_SECONDS
    )
    if kid not in keys:
        raise IdentityRefused("unknown_kid", f"The issuer publishes no key {kid!r}.")
    return dict(keys[kid])


def _key_fits(jwk: dict[str, Any], alg: str) -> bool:
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg:
        return False
    if alg == "RS256":
        return bool(jwk.get("kty") == "RSA")
    return bool(jwk.get("kty") == "EC" and jwk.get("crv") == "P-256")


def _text(value: Any, limit: int = 200) -> str:
    """A claim as text the database and the ledger can store: at most ``limit`` characters,
    without NUL or unpaired surrogates (a JWT's JSON may carry ``\\u0000`` or ``\\ud800``)."""
    if value is None:
        return ""
    text = str(value)[:limit].replace("\x00", "")
    return text.encode("utf-8", "ignore").decode("utf-8")


def unverified_summary(raw: str) -> dict[str, str]:
    """The header fields and issuer of a token that was refused, for the audit event. Claims of
    an unverified token are only the sender's word: short strings, never the token itself."""
    try:
        header = jwt.get_unverified_header(raw)
        claims = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return {
        "alg": _text(header.get("alg"), 20),
        "kid": _text(header.get("kid"), 100),
        "iss": _text(claims.get("iss")),
        "sub": _text(claims.get("sub")),
    }


def _identity(issuer: TrustedIssuer, claims: dict[str, Any]) -> CIIdentity:
    if issuer.claim_format == ClaimFormat.GITLAB:
        repository = claims.get("project_path")
        ref = claims.get("ref")
        ref_type = claims.get("ref_type")
        if isinstance(ref, str) and not ref.startswith("refs/"):
            ref = f"refs/tags/{ref}" if ref_type == "tag" else f"refs/heads/{ref}"
        workflow = claims.get("ci_config_ref_uri", "")
        run_id = claims.get("pipeline_id", "")
    else:
        repository = claims.get("repository")
        ref = claims.get("ref")
        workflow = claims.get("workflow", "")
        run_id = claims.get("run_id", "")
    for name, value in (("repository", repository), ("ref", ref)):
        if not isinstance(value, str) or not value:
            raise IdentityRefused("missing_claim", f"The token has no {name} claim.")
    return CIIdentity(
        issuer=issuer.issuer,
        subject=_text(claims.get("sub")),
        repository=_text(repository),
        ref=_text(ref),
        environment=_text(claims.get("environment", "")),
        workflow=_text(workflow, 300),
        run_id=_text(run_id, 100),
        sha=_text(claims.get("sha", ""), 64),
    )


def verify_id_token(raw: str) -> tuple[TrustedIssuer, CIIdentity]:
    """Verify ``raw`` against its trusted issuer and return the issuer and the CI identity."""
    try:
        header = jwt.get_unverified_header(raw)
        unverified = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise IdentityRefused("malformed_token", "The ID token is not a well-formed JWT.") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise IdentityRefused("unsigned_token", "Unsigned tokens (alg none) are refused.")
    if alg not in ALLOWED_ALGORITHMS:
        raise IdentityRefused(
            "alg_not_allowed",
            f"Algorithm {alg[:20]!r} is refused; issuers must sign with RS256 or ES256.",
        )
    iss = unverified.get("iss")
    issuer = (
        TrustedIssuer.objects.filter(issuer=iss, is_active=True).first()
        if isinstance(iss, str) and text_problem(iss) is None
        else None
    )
    if issuer is None:
        raise IdentityRefused("untrusted_issuer", "The token's issuer is not trusted here.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise IdentityRefused("unknown_kid", "The token names no signing key (kid).")
    jwk = issuer_key(issuer, kid)
    if not _key_fits(jwk, alg):
        raise IdentityRefused(
            "alg_not_allowed", f"Key {kid!r} is not a key for {alg}; the token is refused."
        )
    try:
        key = jwt.PyJWK(jwk, algorithm=alg)
        claims = jwt.decode(
            raw,
            key=key,
            algorithms=[alg],
            audience=issuer.audience,
            issuer=issuer.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.InvalidSignatureError:
        raise IdentityRefused(
            "invalid_signature", "The token's signature does not verify."
        ) from None
    except jwt.ExpiredSignatureError:
        raise IdentityRefused("token_expired", "The ID token has expired.") from None
    except jwt.ImmatureSignatureError:
        raise IdentityRefused("token_not_yet_valid", "The ID token is not valid yet.") from None
    except jwt.InvalidAudienceError:
        raise IdentityRefused(
            "wrong_audience", f"The ID token's audience must be {issuer.audience!r}."
        ) from None
    except jwt.MissingRequiredClaimError as exc:
        raise IdentityRefused("missing_claim", f"The token has no {exc.claim} claim.") from None
    except (jwt.PyJWKError, jwt.PyJWTError):
        raise IdentityRefused("malformed_token", "The ID token could not be verified.") from None
    return issuer, _identity(issuer, claims)
