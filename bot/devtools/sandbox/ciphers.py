"""Real Instant Connect ciphers: a compact JWS (HMAC) nested in a PBES2 password JWE (joserfc)."""

from __future__ import annotations

import base64
from typing import Any

from joserfc import jwe, jwt
from joserfc.jwk import OctKey

JWE_ALGS = ("PBES2-HS256+A128KW", "PBES2-HS384+A192KW", "PBES2-HS512+A256KW")
ENCS = ("A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512", "A128GCM", "A192GCM", "A256GCM")
JWS_ALGS = ("HS256", "HS384", "HS512")


def seal(
    claims: dict[str, Any],
    secret: bytes,
    *,
    jws_alg: str,
    jwe_alg: str,
    enc: str,
    salt: bytes,
    iterations: int,
) -> str:
    """Sign the claims with the secret, then encrypt the JWS with the secret as password."""
    key = OctKey.import_key(secret)
    signed = jwt.encode({"alg": jws_alg}, claims, key, algorithms=[jws_alg])
    header = {
        "p2s": base64.urlsafe_b64encode(salt).decode("ascii").rstrip("="),
        "p2c": iterations,
        "enc": enc,
        "alg": jwe_alg,
        "cty": "JWT",
    }
    return jwe.encrypt_compact(header, signed, key, algorithms=[jwe_alg, enc])


def unseal(cipher: str, secret: bytes) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Decrypt a cipher and verify its JWS: (JWE header, JWS header, claims)."""
    key = OctKey.import_key(secret)
    encrypted = jwe.decrypt_compact(cipher, key, algorithms=[*JWE_ALGS, *ENCS])
    token = jwt.decode(encrypted.plaintext or b"", key, algorithms=list(JWS_ALGS))
    return dict(encrypted.protected), dict(token.header), dict(token.claims)
