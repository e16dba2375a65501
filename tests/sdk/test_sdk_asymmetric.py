"""(Named to run after test_sdk.py, whose ListKeys check reads page 1.)
Asymmetric, HMAC and SM4 keys through the official Python SDKs, in all
three modes (SPEC section 11): CreateKey with KeySpec/KeyUsage,
GetPublicKey, AsymmetricSign/Verify/Encrypt/Decrypt, GenerateMac/VerifyMac,
SM4 Encrypt/Decrypt; signatures checked with `cryptography` against the
GetPublicKey PEM, ciphertexts made by `cryptography` opened by the service,
and the errors of a wrong usage, algorithm or version."""

import base64
import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from test_sdk import fails


def b64(data):
    return base64.b64encode(data).decode()


def create(sdk, spec, usage=None):
    params = {"KeySpec": spec}
    if usage:
        params["KeyUsage"] = usage
    meta = sdk.call("CreateKey", **params)["KeyMetadata"]
    assert meta["KeySpec"] == spec
    return meta["KeyId"], meta["PrimaryKeyVersion"], meta["KeyUsage"]


def public_key(sdk, key_id, version):
    r = sdk.call("GetPublicKey", KeyId=key_id, KeyVersionId=version)
    assert (r["KeyId"], r["KeyVersionId"]) == (key_id, version)
    return serialization.load_pem_public_key(r["PublicKey"].encode())


def test_sign_and_verify(sdk):
    message = b"signed through the SDK"
    digest = b64(hashlib.sha256(message).digest())
    for spec, alg, check in [
        ("EC_P256", "ECDSA_SHA_256", lambda k, s: k.verify(s, message, ec.ECDSA(hashes.SHA256()))),
        ("EC_P256K", "ECDSA_SHA_256", lambda k, s: k.verify(s, message, ec.ECDSA(hashes.SHA256()))),
        ("RSA_2048", "RSA_PKCS1_SHA_256",
         lambda k, s: k.verify(s, message, padding.PKCS1v15(), hashes.SHA256())),
        ("RSA_2048", "RSA_PSS_SHA_256",
         lambda k, s: k.verify(s, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                               hashes.SHA256())),
    ]:
        key_id, version, usage = create(sdk, spec)
        assert usage == "SIGN/VERIFY"
        r = sdk.call("AsymmetricSign", KeyId=key_id, KeyVersionId=version, Algorithm=alg, Digest=digest)
        signature = base64.b64decode(r["Value"])
        check(public_key(sdk, key_id, version), signature)  # raises if invalid
        r = sdk.call("AsymmetricVerify", KeyId=key_id, KeyVersionId=version, Algorithm=alg,
                     Digest=digest, Value=r["Value"])
        assert r["Value"] is True
        other = b64(hashlib.sha256(b"other").digest())
        r = sdk.call("AsymmetricVerify", KeyId=key_id, KeyVersionId=version, Algorithm=alg,
                     Digest=other, Value=b64(signature))
        assert r["Value"] is False


def test_sm2_sign_and_encrypt(sdk):
    key_id, version, _ = create(sdk, "EC_SM2")
    digest = b64(bytes(32))  # any 32-byte e = SM3(Z(A) || M)
    r = sdk.call("AsymmetricSign", KeyId=key_id, KeyVersionId=version, Algorithm="SM2DSA", Digest=digest)
    r = sdk.call("AsymmetricVerify", KeyId=key_id, KeyVersionId=version, Algorithm="SM2DSA",
                 Digest=digest, Value=r["Value"])
    assert r["Value"] is True
    key_id, version, usage = create(sdk, "EC_SM2", "ENCRYPT/DECRYPT")
    assert usage == "ENCRYPT/DECRYPT"
    r = sdk.call("AsymmetricEncrypt", KeyId=key_id, KeyVersionId=version, Algorithm="SM2PKE",
                 Plaintext=b64(b"sm2 secret"))
    r = sdk.call("AsymmetricDecrypt", KeyId=key_id, KeyVersionId=version, Algorithm="SM2PKE",
                 CiphertextBlob=r["CiphertextBlob"])
    assert base64.b64decode(r["Plaintext"]) == b"sm2 secret"


def test_rsa_oaep_from_cryptography(sdk):
    key_id, version, _ = create(sdk, "RSA_3072", "ENCRYPT/DECRYPT")
    pub = public_key(sdk, key_id, version)
    for alg, h in [("RSAES_OAEP_SHA_256", hashes.SHA256()), ("RSAES_OAEP_SHA_1", hashes.SHA1())]:
        ct = pub.encrypt(b"from cryptography", padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
        r = sdk.call("AsymmetricDecrypt", KeyId=key_id, KeyVersionId=version, Algorithm=alg,
                     CiphertextBlob=b64(ct))
        assert base64.b64decode(r["Plaintext"]) == b"from cryptography"
        r = sdk.call("AsymmetricEncrypt", KeyId=key_id, KeyVersionId=version, Algorithm=alg,
                     Plaintext=b64(b"round trip"))
        r = sdk.call("AsymmetricDecrypt", KeyId=key_id, KeyVersionId=version, Algorithm=alg,
                     CiphertextBlob=r["CiphertextBlob"])
        assert base64.b64decode(r["Plaintext"]) == b"round trip"


def test_macs(sdk):
    key_id, _, usage = create(sdk, "HMAC_SHA_256")
    assert usage == "GENERATE/VERIFY MAC"
    message = b64(b"1234")
    r = sdk.call("GenerateMac", KeyId=key_id, Algorithm="HMAC_SHA_256", Message=message)
    assert r["KeyId"] == key_id and len(base64.b64decode(r["Mac"])) == 32
    ok = sdk.call("VerifyMac", KeyId=key_id, Algorithm="HMAC_SHA_256", Message=message, Mac=r["Mac"])
    assert ok["Value"] is True
    bad = sdk.call("VerifyMac", KeyId=key_id, Algorithm="HMAC_SHA_256", Message=b64(b"1235"), Mac=r["Mac"])
    assert bad["Value"] is False
    fails(sdk, "InvalidParameter", 400, "GenerateMac", KeyId=key_id, Algorithm="HMAC_SM3", Message=message)


def test_sm4_keys_encrypt_and_decrypt(sdk):
    key_id, _, usage = create(sdk, "Aliyun_SM4")
    assert usage == "ENCRYPT/DECRYPT"
    r = sdk.call("Encrypt", KeyId=key_id, Plaintext="sm4 text")
    assert base64.b64decode(r["CiphertextBlob"])[0] == 2
    assert sdk.call("Decrypt", CiphertextBlob=r["CiphertextBlob"])["Plaintext"] == "sm4 text"


def test_wrong_usage_algorithm_and_version(sdk):
    key_id, version, _ = create(sdk, "EC_P256")
    digest = b64(hashlib.sha256(b"x").digest())
    e = fails(sdk, "InvalidParameter", 400, "AsymmetricSign", KeyId=key_id, KeyVersionId=version,
              Algorithm="RSA_PSS_SHA_256", Digest=digest)
    assert "Algorithm" in e.message
    e = fails(sdk, "InvalidParameter", 400, "AsymmetricSign", KeyId=key_id, KeyVersionId=version,
              Algorithm="ECDSA_SHA_256", Digest=b64(b"short"))
    assert "Digest" in e.message
    e = fails(sdk, "InvalidParameter", 400, "Encrypt", KeyId=key_id, Plaintext="x")
    assert "KeyId" in e.message
    other_id, other_version, _ = create(sdk, "EC_P256")
    fails(sdk, "Forbidden.KeyVersionNotFound", 404, "GetPublicKey", KeyId=key_id, KeyVersionId=other_version)
    aes = sdk.call("CreateKey")["KeyMetadata"]
    e = fails(sdk, "InvalidParameter", 400, "AsymmetricSign", KeyId=aes["KeyId"],
              KeyVersionId=aes["PrimaryKeyVersion"], Algorithm="ECDSA_SHA_256", Digest=digest)
    assert "KeyId" in e.message
    fails(sdk, "InvalidParameter", 400, "CreateKey", KeySpec="Aliyun_AES_128")
    fails(sdk, "InvalidParameter", 400, "CreateKey", KeySpec="EC_P256", KeyUsage="ENCRYPT/DECRYPT")
    sdk.call("DisableKey", KeyId=key_id)
    fails(sdk, "Rejected.Disabled", 409, "AsymmetricSign", KeyId=key_id, KeyVersionId=version,
          Algorithm="ECDSA_SHA_256", Digest=digest)
