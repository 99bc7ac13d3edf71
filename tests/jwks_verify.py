"""Verifies a session token with PyJWT, given only the server's JWKS.

Usage: python3 tests/jwks_verify.py JWKS_JSON TOKEN NOW
Prints the claims as JSON and exits 0, or prints why and exits 1. An independent
implementation (PyJWT over `cryptography`) checks our Ed25519 JWTs and JWKS. NOW
(unix seconds) is the test server's clock, which a test sets; the lifetime is
checked against it instead of this machine's clock.
"""

import json
import sys

import jwt


def main() -> int:
    jwks, token, now = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
    try:
        kid = jwt.get_unverified_header(token)["kid"]
        claims = jwt.decode(
            token,
            key=keys[kid].key,
            algorithms=["EdDSA"],
            options={"require": ["exp", "iat", "sub", "jti"], "verify_exp": False, "verify_iat": False},
        )
    except (jwt.PyJWTError, KeyError) as e:
        print(f"refused: {e!r}", file=sys.stderr)
        return 1
    if not claims["iat"] <= now < claims["exp"]:
        print(f"refused: not valid at {now}", file=sys.stderr)
        return 1
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
