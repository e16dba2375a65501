#!/usr/bin/env python3
"""Wraps key material for ImportKeyMaterial, as a user does outside localkms.

Usage: wrap_key.py WRAPPING_ALGORITHM PUBLIC_KEY_BASE64 < MATERIAL_HEX

PUBLIC_KEY_BASE64 is the PublicKey of GetParametersForImport (base64 DER
SubjectPublicKeyInfo). The material is read as hex from standard input, so it
never appears on a command line. Prints the EncryptedKeyMaterial (base64).
Needs the `cryptography` package.
"""

import base64
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def wrapping_padding(algorithm):
    if algorithm == "RSAES_PKCS1_V1_5":
        return padding.PKCS1v15()
    if algorithm == "RSAES_OAEP_SHA_1":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    if algorithm == "RSAES_OAEP_SHA_256":
        return padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )
    raise SystemExit(f"unknown wrapping algorithm {algorithm}")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    algorithm, public_key_b64 = sys.argv[1], sys.argv[2]
    material = bytes.fromhex(sys.stdin.read().strip())
    public_key = serialization.load_der_public_key(base64.b64decode(public_key_b64))
    wrapped = public_key.encrypt(material, wrapping_padding(algorithm))
    print(base64.b64encode(wrapped).decode("ascii"))


if __name__ == "__main__":
    main()
