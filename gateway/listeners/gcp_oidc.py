"""The OIDC tokens Pub/Sub signs authenticated pushes with, and the keys that verify them.

A push of a subscription with an OIDC token carries ``Authorization: Bearer <JWT>``, signed by
Google (RS256, the key named by the header's `kid`). `verify_push_token` accepts it when the
signature holds, the issuer is Google's, the audience is the one the trigger expects, the token
has not expired, and it was issued for the resource's service account with a verified email.

Keys come from a `KeySource`: `GoogleCertificates` reads Google's certificate endpoint (the
``{kid: PEM certificate}`` document, or a JWKS), keeps the keys for as long as the answer's
`Cache-Control` allows and reads it again when a token names a key it does not know; its URL
and HTTP client are parameters. `StaticKeys` holds keys given to it (for tests, or a gateway
that verifies tokens signed by a key of its own).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.errors import GatewayError

GOOGLE_CERTS_URL: Final = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS: Final = ("https://accounts.google.com", "accounts.google.com")
ALGORITHM: Final = "RS256"
_MAX_AGE: Final = re.compile(r"max-age=(\d+)")


class InvalidPushToken(GatewayError):
    """A push's token is missing, malformed, badly signed, expired, or not meant for us."""


class KeySource(Protocol):
    """Where the public keys that sign push tokens come from."""

    async def public_key(self, kid: str) -> RSAPublicKey:
        """The key named `kid`; `InvalidPushToken` when there is none."""
        ...


class StaticKeys:
    """A fixed set of keys, by key id (PEM public keys or certificates, or key objects)."""

    def __init__(self, keys: Mapping[str, RSAPublicKey | str]) -> None:
        self._keys = {
            kid: key if isinstance(key, RSAPublicKey) else load_public_key(key)
            for kid, key in keys.items()
        }

    async def public_key(self, kid: str) -> RSAPublicKey:
        """The key named `kid`."""
        key = self._keys.get(kid)
        if key is None:
            raise InvalidPushToken(f"no key with id {kid!r}")
        return key


class GoogleCertificates:
    """Google's signing keys, read from `url` and cached (see the module docstring).

    An unknown key id refetches the document, at most once every `min_refresh_s`, so that
    tokens naming made-up keys cannot make the gateway hammer the endpoint.
    """

    def __init__(
        self,
        url: str = GOOGLE_CERTS_URL,
        *,
        client: httpx.AsyncClient | None = None,
        min_refresh_s: float = 30.0,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client
        self._min_refresh_s = min_refresh_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._keys: dict[str, RSAPublicKey] = {}
        self._expires_at = 0.0
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def public_key(self, kid: str) -> RSAPublicKey:
        """The key named `kid`, fetching the document when the cache is stale or lacks it."""
        key = self._keys.get(kid) if self._clock() < self._expires_at else None
        if key is not None:
            return key
        async with self._lock:
            now = self._clock()
            stale = now >= self._expires_at
            recent = self._fetched_at is not None and now - self._fetched_at < self._min_refresh_s
            if stale or (kid not in self._keys and not recent):
                await self._fetch()
        key = self._keys.get(kid)
        if key is None:
            raise InvalidPushToken(f"Google has no signing key with id {kid!r}")
        return key

    async def _fetch(self) -> None:
        try:
            if self._client is not None:
                response = await self._client.get(self._url, timeout=self._timeout_s)
            else:
                async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                    response = await client.get(self._url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # A key we hold already still verifies; the caller decides on what it lacks.
            raise InvalidPushToken(f"cannot read the signing keys from {self._url}: {exc}") from exc
        now = self._clock()
        self._keys = parse_key_document(document)
        self._fetched_at = now
        found = _MAX_AGE.search(response.headers.get("cache-control", ""))
        self._expires_at = now + (int(found.group(1)) if found else self._min_refresh_s)


def parse_key_document(document: Any) -> dict[str, RSAPublicKey]:
    """The RSA keys of a ``{kid: PEM certificate}`` document or of a JWKS, by key id."""
    if isinstance(document, Mapping) and isinstance(document.get("keys"), list):
        keys: dict[str, RSAPublicKey] = {}
        for jwk in document["keys"]:
            key = jwt.PyJWK(jwk).key
            if isinstance(jwk, Mapping) and isinstance(key, RSAPublicKey) and jwk.get("kid"):
                keys[str(jwk["kid"])] = key
        return keys
    if isinstance(document, Mapping):
        return {str(kid): load_public_key(str(pem)) for kid, pem in document.items()}
    raise ValueError("the key document is neither a JWKS nor a map of certificates")


def load_public_key(pem: str) -> RSAPublicKey:
    """An RSA public key from a PEM certificate or public key."""
    data = pem.encode()
    key = (
        x509.load_pem_x509_certificate(data).public_key()
        if b"CERTIFICATE" in data
        else load_pem_public_key(data)
    )
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"expected an RSA key, got {type(key).__name__}")
    return key


async def verify_push_token(
    authorization: str | None,
    keys: KeySource,
    *,
    audience: str,
    email: str,
    leeway_s: float = 30.0,
) -> dict[str, Any]:
    """The claims of the push's bearer token; `InvalidPushToken` saying why it is refused."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidPushToken("no bearer token: the subscription must push with an OIDC token")
    token = token.strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidPushToken(f"the token is not a JWT: {exc}") from None
    if header.get("alg") != ALGORITHM:
        raise InvalidPushToken(f"the token is signed with {header.get('alg')!r}, not {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidPushToken("the token names no signing key (kid)")
    key = await keys.public_key(kid)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=GOOGLE_ISSUERS,
            leeway=leeway_s,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidPushToken("the token has expired") from None
    except jwt.InvalidAudienceError:
        raise InvalidPushToken(f"the token is not for audience {audience!r}") from None
    except jwt.InvalidIssuerError:
        raise InvalidPushToken("the token was not issued by Google") from None
    except jwt.PyJWTError as exc:
        raise InvalidPushToken(f"the token does not verify: {exc}") from None
    if claims.get("email") != email:
        raise InvalidPushToken(
            f"the token was issued for {claims.get('email')!r}, not for the resource's "
            f"service account {email!r}"
        )
    if claims.get("email_verified") is not True:
        raise InvalidPushToken("the token's email is not verified")
    return claims
