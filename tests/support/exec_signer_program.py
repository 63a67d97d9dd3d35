"""An ``exec:`` signing program for the tests, following the contract of exec_signer.py.

Usage: ``python exec_signer_program.py MODE ARG… OPERATION`` where OPERATION is
``public-key`` or ``sign`` (appended by the signer). Modes:

``vault KEY``            sign with an OpenBao/Vault transit key ($VAULT_ADDR, $VAULT_TOKEN):
                         the realistic case, no private key on this machine's disk.
``vault-crossed A B``    declare key A's public key, sign with key B (a mixed-up setup).
``file PEM``             sign with a PEM private key file (unit tests only).
``garbage PEM``          declare the file key, print 64 random bytes as the signature.
``junk PEM``             declare the file key, print text that is no signature at all.
``fail PEM``             declare the file key, fail signing with exit status 3.
``sleep PEM``            declare the file key, never answer a signing request.
``flood PEM``            declare the file key, print without end when signing.
``argv PEM OUT``         declare the file key, record argv in OUT, sign normally.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.request


def _vault(method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    request = urllib.request.Request(
        os.environ["VAULT_ADDR"].rstrip("/") + "/v1/" + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Vault-Token": os.environ["VAULT_TOKEN"]},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data = json.loads(response.read())["data"]
    assert isinstance(data, dict)
    return data


def _vault_public(key: str) -> bytes:
    data = _vault("GET", f"transit/keys/{key}")
    keys = data["keys"]
    assert isinstance(keys, dict)
    return base64.b64decode(keys[str(data["latest_version"])]["public_key"])


def _vault_sign(key: str, payload: bytes) -> bytes:
    data = _vault("POST", f"transit/sign/{key}", {"input": base64.b64encode(payload).decode()})
    text = data["signature"]
    assert isinstance(text, str)
    return base64.b64decode(text.split(":", 2)[2])


def _file_key(path: str):
    from cryptography.hazmat.primitives import serialization

    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def _raw_public(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def main() -> int:
    mode, args, op = sys.argv[1], sys.argv[2:-1], sys.argv[-1]
    if mode in ("vault", "vault-crossed"):
        declared = args[0]
        if op == "public-key":
            print(_vault_public(declared).hex())
            return 0
        signer = args[1] if mode == "vault-crossed" else args[0]
        print(base64.b64encode(_vault_sign(signer, sys.stdin.buffer.read())).decode())
        return 0
    key = _file_key(args[0])
    if op == "public-key":
        print(_raw_public(key).hex())
        return 0
    payload = sys.stdin.buffer.read()
    if mode == "garbage":
        print(base64.b64encode(os.urandom(64)).decode())
    elif mode == "junk":
        print("I signed it, trust me")
    elif mode == "fail":
        sys.stderr.write("hsm: token not present\n")
        return 3
    elif mode == "sleep":
        time.sleep(3600)
    elif mode == "flood":
        while True:
            sys.stdout.write("A" * 65536)
    else:
        if mode == "argv":
            with open(args[1], "w", encoding="utf-8") as f:
                json.dump(sys.argv, f)
        print(base64.b64encode(key.sign(payload)).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
