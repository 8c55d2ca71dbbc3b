"""Push token verification and Google's certificate endpoint, on a mock transport."""

from __future__ import annotations

import datetime
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from gateway.listeners.gcp_oidc import (
    GoogleCertificates,
    InvalidPushToken,
    StaticKeys,
    parse_key_document,
    verify_push_token,
)

EMAIL = "pusher@acme.iam.gserviceaccount.com"
AUDIENCE = "https://gateway.example/api/gcp/w/acme/u/ops/orders"
CERTS_URL = "https://certs.example/oauth2/v1/certs"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    """The signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate_pem(key: rsa.RSAPrivateKey) -> str:
    """A self-signed certificate of `key`, as Google's v1 endpoint serves them."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(Encoding.PEM).decode()


def token(key: rsa.RSAPrivateKey, kid: str = "k1", **claims: Any) -> str:
    """A valid push token, with `claims` written over."""
    now = int(time.time())
    body = {
        "iss": "accounts.google.com",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "email": EMAIL,
        "email_verified": True,
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


async def verify(authorization: str | None, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """Verify with the key known as `k1`."""
    return await verify_push_token(
        authorization, StaticKeys({"k1": key.public_key()}), audience=AUDIENCE, email=EMAIL
    )


async def test_a_valid_token_gives_its_claims(key: rsa.RSAPrivateKey) -> None:
    claims = await verify(f"Bearer {token(key)}", key)

    assert (claims["email"], claims["aud"]) == (EMAIL, AUDIENCE)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic abc", "Bearer ", "Bearer not.a.jwt"],
)
async def test_a_missing_or_malformed_token_is_refused(
    key: rsa.RSAPrivateKey, authorization: str | None
) -> None:
    with pytest.raises(InvalidPushToken):
        await verify(authorization, key)


async def test_a_token_signed_with_another_algorithm_is_refused(key: rsa.RSAPrivateKey) -> None:
    hmac = jwt.encode({"email": EMAIL}, "secret" * 8, algorithm="HS256", headers={"kid": "k1"})
    unsigned = jwt.encode({"email": EMAIL}, "", algorithm="none", headers={"kid": "k1"})

    for forged in (hmac, unsigned):
        with pytest.raises(InvalidPushToken, match="not RS256"):
            await verify(f"Bearer {forged}", key)


async def test_a_token_without_its_required_claims_is_refused(key: rsa.RSAPrivateKey) -> None:
    bare = jwt.encode(
        {"iss": "accounts.google.com", "aud": AUDIENCE, "email": EMAIL, "email_verified": True},
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )

    with pytest.raises(InvalidPushToken, match="exp"):
        await verify(f"Bearer {bare}", key)


def test_keys_are_read_from_certificates_and_from_a_jwks(key: rsa.RSAPrivateKey) -> None:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)

    from_certificates = parse_key_document({"k1": certificate_pem(key)})
    from_jwks = parse_key_document({"keys": [{**jwk, "kid": "k1", "alg": "RS256"}]})

    expected = key.public_key().public_numbers()
    assert from_certificates["k1"].public_numbers() == expected
    assert from_jwks["k1"].public_numbers() == expected


class CertificateEndpoint:
    """Google's certificate endpoint, on an httpx mock transport, counting its requests."""

    def __init__(self, keys: dict[str, str], max_age_s: int = 3600) -> None:
        self.keys = keys
        self.max_age_s = max_age_s
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        assert str(request.url) == CERTS_URL
        return httpx.Response(
            200,
            json=self.keys,
            headers={"cache-control": f"public, max-age={self.max_age_s}, must-revalidate"},
        )


class ManualClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_google_certificates_are_cached_for_their_max_age(key: rsa.RSAPrivateKey) -> None:
    endpoint = CertificateEndpoint({"k1": certificate_pem(key)}, max_age_s=60)
    clock = ManualClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        certificates = GoogleCertificates(CERTS_URL, client=client, clock=clock)

        claims = await verify_push_token(
            f"Bearer {token(key)}", certificates, audience=AUDIENCE, email=EMAIL
        )
        await certificates.public_key("k1")
        clock.now += 61
        await certificates.public_key("k1")

    assert claims["email"] == EMAIL
    assert endpoint.requests == 2


async def test_an_unknown_key_refetches_at_most_once_per_interval(
    key: rsa.RSAPrivateKey,
) -> None:
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    endpoint = CertificateEndpoint({"k1": certificate_pem(key)})
    clock = ManualClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        certificates = GoogleCertificates(CERTS_URL, client=client, clock=clock, min_refresh_s=30)
        await certificates.public_key("k1")
        endpoint.keys["k2"] = certificate_pem(rotated)
        clock.now += 31
        rotated_key = await certificates.public_key("k2")
        with pytest.raises(InvalidPushToken, match="no signing key"):
            await certificates.public_key("made-up")
        with pytest.raises(InvalidPushToken, match="no signing key"):
            await certificates.public_key("made-up-too")

    assert rotated_key.public_numbers() == rotated.public_key().public_numbers()
    assert endpoint.requests == 2


async def test_an_unreachable_endpoint_refuses_the_token() -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(failing)) as client:
        certificates = GoogleCertificates(CERTS_URL, client=client)
        with pytest.raises(InvalidPushToken, match="cannot read the signing keys"):
            await certificates.public_key("k1")
