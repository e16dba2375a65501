"""Every implemented action through the official Python SDKs, against the
`localkms serve` binary: the old SDK (aliyun-python-sdk-core/-kms, v1 signatures)
and the tea SDK (alibabacloud-kms20160120) in ACS3 and v2 modes. Includes
the error paths and a full BYOK flow with `cryptography`."""

import base64
import datetime
import hashlib
import hmac
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from conftest import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    Gateway,
    SdkError,
    make_sdk,
)

METADATA_FIELDS = {
    "Arn", "AutomaticRotation", "CreationDate", "Creator", "DeleteDate",
    "Description", "KeyId", "KeySpec", "KeyState", "KeyUsage",
    "LastRotationDate", "MaterialExpireTime", "NextRotationDate", "Origin",
    "PrimaryKeyVersion", "ProtectionLevel", "RotationInterval",
}


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def new_key(sdk, **params):
    return sdk.call("CreateKey", **params)["KeyMetadata"]["KeyId"]


def fails(sdk, code, status, action, **params):
    with pytest.raises(SdkError) as info:
        sdk.call(action, **params)
    assert (info.value.code, info.value.status) == (code, status), str(info.value)
    return info.value


def state(sdk, key_id):
    return sdk.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"]


# ---------------------------------------------------------------- lifecycle


def test_create_describe_and_list_keys(sdk):
    created = sdk.call("CreateKey", Description="orders & more é", ProtectionLevel="HSM")
    meta = created["KeyMetadata"]
    assert created["RequestId"]
    assert METADATA_FIELDS <= set(meta)
    assert meta["Description"] == "orders & more é"
    assert meta["KeyState"] == "Enabled"
    assert meta["ProtectionLevel"] == "HSM"
    assert meta["Origin"] == "Aliyun_KMS"
    described = sdk.call("DescribeKey", KeyId=meta["Arn"])["KeyMetadata"]
    assert described["KeyId"] == meta["KeyId"]
    page = sdk.call("ListKeys", PageNumber=1, PageSize=100)
    assert page["PageNumber"] == 1 and page["PageSize"] == 100
    assert page["TotalCount"] >= 1
    assert meta["KeyId"] in [k["KeyId"] for k in page["Keys"]["Key"]]


def test_create_key_with_rotation_and_tags(sdk):
    meta = sdk.call(
        "CreateKey",
        EnableAutomaticRotation=True,
        RotationInterval="8d",
        Tags=json.dumps([{"TagKey": "Project", "TagValue": "A B"}]),
    )["KeyMetadata"]
    assert meta["AutomaticRotation"] == "Enabled"
    assert meta["RotationInterval"] == f"{8 * 86400}s"
    tags = sdk.call("ListResourceTags", KeyId=meta["KeyId"])["Tags"]["Tag"]
    assert [(t["TagKey"], t["TagValue"]) for t in tags] == [("Project", "A B")]


def test_enable_disable_schedule_cancel(sdk):
    key = new_key(sdk)
    sdk.call("DisableKey", KeyId=key)
    assert state(sdk, key) == "Disabled"
    sdk.call("EnableKey", KeyId=key)
    assert state(sdk, key) == "Enabled"
    sdk.call("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
    meta = sdk.call("DescribeKey", KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and meta["DeleteDate"]
    fails(sdk, "Rejected.StateModifiedFailed", 409, "EnableKey", KeyId=key)
    sdk.call("CancelKeyDeletion", KeyId=key)
    assert state(sdk, key) == "Enabled"
    fails(sdk, "Rejected.StateModifiedFailed", 409, "CancelKeyDeletion", KeyId=key)


# ------------------------------------------------------------- cryptography

TRICKY_TEXT = "hello world+/=*~ é & 漢字 \" ' < > % ?"


def test_encrypt_decrypt(sdk):
    key = new_key(sdk)
    alias = unique("alias/enc-")
    sdk.call("CreateAlias", AliasName=alias, KeyId=key)
    ctx = {"tenant": "t 1", "a": "b"}
    for key_ref in (key, alias):
        enc = sdk.call("Encrypt", KeyId=key_ref, Plaintext=TRICKY_TEXT, EncryptionContext=ctx)
        assert enc["KeyId"] == key and enc["KeyVersionId"]
        dec = sdk.call(
            "Decrypt",
            CiphertextBlob=enc["CiphertextBlob"],
            EncryptionContext={"a": "b", "tenant": "t 1"},
        )
        assert dec["Plaintext"] == TRICKY_TEXT
        assert dec["KeyId"] == key and dec["KeyVersionId"] == enc["KeyVersionId"]
    # The wrong context, and a tampered blob, fail alike.
    first = fails(sdk, "InvalidParameter", 400, "Decrypt",
                  CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"tenant": "t 2"})
    blob = bytearray(base64.b64decode(enc["CiphertextBlob"]))
    blob[-1] ^= 1
    second = fails(sdk, "InvalidParameter", 400, "Decrypt",
                   CiphertextBlob=base64.b64encode(bytes(blob)).decode(),
                   EncryptionContext=ctx)
    assert first.message == second.message and "CiphertextBlob" in first.message
    # Without a context.
    enc = sdk.call("Encrypt", KeyId=key, Plaintext="no context")
    assert sdk.call("Decrypt", CiphertextBlob=enc["CiphertextBlob"])["Plaintext"] == "no context"


def test_generate_data_key(sdk):
    key = new_key(sdk)
    for params, size in (({}, 32), ({"KeySpec": "AES_128"}, 16), ({"NumberOfBytes": 48}, 48),
                         ({"KeySpec": "AES_128", "NumberOfBytes": 7}, 7)):
        dk = sdk.call("GenerateDataKey", KeyId=key, EncryptionContext={"k": "v"}, **params)
        assert len(base64.b64decode(dk["Plaintext"])) == size
        assert dk["KeyId"] == key and dk["KeyVersionId"]
        dec = sdk.call("Decrypt", CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"k": "v"})
        assert dec["Plaintext"] == dk["Plaintext"]
    fails(sdk, "InvalidParameter", 400, "GenerateDataKey", KeyId=key, NumberOfBytes=1025)
    fails(sdk, "InvalidParameter", 400, "GenerateDataKey", KeyId=key, KeySpec="AES_512")


def test_state_rejections(sdk):
    key = new_key(sdk)
    blob = sdk.call("Encrypt", KeyId=key, Plaintext="x")["CiphertextBlob"]
    sdk.call("DisableKey", KeyId=key)
    fails(sdk, "Rejected.Disabled", 409, "Encrypt", KeyId=key, Plaintext="x")
    fails(sdk, "Rejected.Disabled", 409, "Decrypt", CiphertextBlob=blob)
    sdk.call("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=30)
    fails(sdk, "Rejected.PendingDeletion", 409, "GenerateDataKey", KeyId=key)


# ------------------------------------------- versions, rotation, ReEncrypt


def test_key_versions_and_rotation_policy(sdk):
    key = new_key(sdk)
    sdk.call("UpdateKeyDescription", KeyId=key, Description="renamed")
    meta = sdk.call("DescribeKey", KeyId=key)["KeyMetadata"]
    assert meta["Description"] == "renamed"
    first = meta["PrimaryKeyVersion"]
    blob = sdk.call("Encrypt", KeyId=key, Plaintext="before rotation")["CiphertextBlob"]
    version = sdk.call("CreateKeyVersion", KeyId=key)["KeyVersion"]
    assert version["KeyId"] == key and version["KeyVersionId"] != first and version["CreationDate"]
    described = sdk.call("DescribeKeyVersion", KeyId=key, KeyVersionId=version["KeyVersionId"])["KeyVersion"]
    assert described == version
    listed = sdk.call("ListKeyVersions", KeyId=key, PageNumber=1, PageSize=10)
    assert listed["TotalCount"] == 2
    assert [v["KeyVersionId"] for v in listed["KeyVersions"]["KeyVersion"]] == [first, version["KeyVersionId"]]
    assert sdk.call("DescribeKey", KeyId=key)["KeyMetadata"]["PrimaryKeyVersion"] == version["KeyVersionId"]
    enc = sdk.call("Encrypt", KeyId=key, Plaintext="after")
    assert enc["KeyVersionId"] == version["KeyVersionId"]
    assert sdk.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "before rotation"
    fails(sdk, "Forbidden.KeyVersionNotFound", 404, "DescribeKeyVersion", KeyId=key,
          KeyVersionId=str(uuid.uuid4()))

    sdk.call("UpdateRotationPolicy", KeyId=key, EnableAutomaticRotation=True, RotationInterval="30d")
    meta = sdk.call("DescribeKey", KeyId=key)["KeyMetadata"]
    assert (meta["AutomaticRotation"], meta["RotationInterval"]) == ("Enabled", f"{30 * 86400}s")
    assert meta["NextRotationDate"]
    sdk.call("UpdateRotationPolicy", KeyId=key, EnableAutomaticRotation=False)
    assert sdk.call("DescribeKey", KeyId=key)["KeyMetadata"]["AutomaticRotation"] == "Disabled"
    fails(sdk, "InvalidParameter", 400, "UpdateRotationPolicy", KeyId=key,
          EnableAutomaticRotation=True, RotationInterval="1d")
    external = sdk.call("CreateKey", Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    fails(sdk, "Unsupported.Origin", 400, "CreateKeyVersion", KeyId=external)


def test_re_encrypt_and_data_keys_without_plaintext(sdk):
    a, b = new_key(sdk), new_key(sdk)
    blob = sdk.call("Encrypt", KeyId=a, Plaintext=TRICKY_TEXT, EncryptionContext={"from": "a"})["CiphertextBlob"]
    moved = sdk.call("ReEncrypt", CiphertextBlob=blob, DestinationKeyId=b,
                     SourceEncryptionContext={"from": "a"}, DestinationEncryptionContext={"to": "b"})
    assert moved["KeyId"] == b and moved["KeyVersionId"]
    assert sdk.call("Decrypt", CiphertextBlob=moved["CiphertextBlob"],
                    EncryptionContext={"to": "b"})["Plaintext"] == TRICKY_TEXT
    fails(sdk, "InvalidParameter", 400, "ReEncrypt", CiphertextBlob=blob, DestinationKeyId=b,
          SourceEncryptionContext={"from": "x"})
    fails(sdk, "Forbidden.KeyNotFound", 404, "ReEncrypt", CiphertextBlob=blob,
          DestinationKeyId=str(uuid.uuid4()), SourceEncryptionContext={"from": "a"})

    sealed = sdk.call("GenerateDataKeyWithoutPlaintext", KeyId=a, KeySpec="AES_128")
    assert "Plaintext" not in sealed and sealed["KeyId"] == a
    data_key = sdk.call("Decrypt", CiphertextBlob=sealed["CiphertextBlob"])["Plaintext"]
    assert len(base64.b64decode(data_key)) == 16
    again = sdk.call("ReEncrypt", CiphertextBlob=sealed["CiphertextBlob"], DestinationKeyId=b)
    assert sdk.call("Decrypt", CiphertextBlob=again["CiphertextBlob"])["Plaintext"] == data_key


# ------------------------------------------------------- aliases and tags


def test_aliases(sdk):
    a, b = new_key(sdk), new_key(sdk)
    alias = unique("alias/app-")
    sdk.call("CreateAlias", AliasName=alias, KeyId=a)
    fails(sdk, "AliasAlreadyExists", 400, "CreateAlias", AliasName=alias, KeyId=b)
    fails(sdk, "InvalidParameter", 400, "CreateAlias", AliasName="no-prefix", KeyId=b)
    assert sdk.call("DescribeKey", KeyId=alias)["KeyMetadata"]["KeyId"] == a
    sdk.call("UpdateAlias", AliasName=alias, KeyId=b)
    by_key = sdk.call("ListAliasesByKeyId", KeyId=b, PageSize=10)
    assert by_key["TotalCount"] == 1
    entry = by_key["Aliases"]["Alias"][0]
    assert entry["AliasName"] == alias and entry["KeyId"] == b
    assert entry["AliasArn"].endswith(":" + alias)
    assert sdk.call("ListAliasesByKeyId", KeyId=a)["TotalCount"] == 0
    everything = sdk.call("ListAliases", PageSize=100)
    assert alias in [x["AliasName"] for x in everything["Aliases"]["Alias"]]
    fails(sdk, "Unsupported.Alias", 400, "DisableKey", KeyId=alias)
    sdk.call("DeleteAlias", AliasName=alias)
    fails(sdk, "Forbidden.AliasNotFound", 404, "DescribeKey", KeyId=alias)
    fails(sdk, "Forbidden.AliasNotFound", 404, "DeleteAlias", AliasName=alias)


def test_tags(sdk):
    key = new_key(sdk)
    sdk.call("TagResource", KeyId=key,
             Tags=json.dumps([{"TagKey": "Project", "TagValue": "A B"}, {"TagKey": "env"}]))
    sdk.call("TagResource", KeyId=key, Tags=json.dumps([{"TagKey": "env", "TagValue": "prod"}]))
    tags = sdk.call("ListResourceTags", KeyId=key)["Tags"]["Tag"]
    assert sorted((t["KeyId"], t["TagKey"], t["TagValue"]) for t in tags) == [
        (key, "Project", "A B"), (key, "env", "prod")]
    sdk.call("UntagResource", KeyId=key, TagKeys=json.dumps(["Project", "absent"]))
    tags = sdk.call("ListResourceTags", KeyId=key)["Tags"]["Tag"]
    assert [t["TagKey"] for t in tags] == ["env"]
    fails(sdk, "InvalidParameter", 400, "TagResource", KeyId=key,
          Tags=json.dumps([{"TagKey": "aliyun-x"}]))
    many = json.dumps([{"TagKey": f"k{i}"} for i in range(11)])
    fails(sdk, "Rejected.LimitExceeded", 400, "TagResource", KeyId=key, Tags=many)


def test_describe_regions(sdk):
    regions = sdk.call("DescribeRegions")["Regions"]["Region"]
    assert regions == [{"RegionId": "cn-hangzhou"}]


# -------------------------------------------------------------------- BYOK

WRAPPINGS = {
    "RSAES_OAEP_SHA_256": padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    "RSAES_OAEP_SHA_1": padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
    "RSAES_PKCS1_V1_5": padding.PKCS1v15(),
}


def wrap(params, algorithm, material):
    public = serialization.load_der_public_key(base64.b64decode(params["PublicKey"]))
    return base64.b64encode(public.encrypt(material, WRAPPINGS[algorithm])).decode()


@pytest.mark.parametrize("algorithm", sorted(WRAPPINGS))
def test_byok_flow(sdk, algorithm):
    meta = sdk.call("CreateKey", Origin="EXTERNAL")["KeyMetadata"]
    key = meta["KeyId"]
    assert meta["KeyState"] == "PendingImport" and meta["PrimaryKeyVersion"] == ""
    fails(sdk, "Rejected.PendingImport", 409, "Encrypt", KeyId=key, Plaintext="x")
    params = sdk.call("GetParametersForImport", KeyId=key,
                      WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048")
    assert params["KeyId"] == key and params["ImportToken"] and params["TokenExpireTime"]
    material = os.urandom(32)
    expire = int(datetime.datetime.now(datetime.timezone.utc).timestamp()) + 86400 * 365
    sdk.call("ImportKeyMaterial", KeyId=key, EncryptedKeyMaterial=wrap(params, algorithm, material),
             ImportToken=params["ImportToken"], KeyMaterialExpireUnix=expire)
    meta = sdk.call("DescribeKey", KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["MaterialExpireTime"] and meta["PrimaryKeyVersion"]
    blob = sdk.call("Encrypt", KeyId=key, Plaintext="imported")["CiphertextBlob"]
    assert sdk.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "imported"
    # The import spent the token.
    fails(sdk, "InvalidImportToken", 400, "ImportKeyMaterial", KeyId=key,
          EncryptedKeyMaterial=wrap(params, algorithm, material), ImportToken=params["ImportToken"])
    # Other material is refused; the token is bound to its key.
    kept = sdk.call("GetParametersForImport", KeyId=key,
                    WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048")
    fails(sdk, "InvalidKeyMaterial", 400, "ImportKeyMaterial", KeyId=key,
          EncryptedKeyMaterial=wrap(kept, algorithm, os.urandom(32)),
          ImportToken=kept["ImportToken"])
    other = sdk.call("CreateKey", Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    fails(sdk, "InvalidImportToken", 400, "ImportKeyMaterial", KeyId=other,
          EncryptedKeyMaterial=wrap(kept, algorithm, material), ImportToken=kept["ImportToken"])
    # Delete the material: a token from before cannot bring it back, a new
    # one brings the same material back.
    sdk.call("DeleteKeyMaterial", KeyId=key)
    assert state(sdk, key) == "PendingImport"
    fails(sdk, "Rejected.PendingImport", 409, "Decrypt", CiphertextBlob=blob)
    fails(sdk, "InvalidImportToken", 400, "ImportKeyMaterial", KeyId=key,
          EncryptedKeyMaterial=wrap(kept, algorithm, material), ImportToken=kept["ImportToken"])
    params = sdk.call("GetParametersForImport", KeyId=key,
                      WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048")
    sdk.call("ImportKeyMaterial", KeyId=key, EncryptedKeyMaterial=wrap(params, algorithm, material),
             ImportToken=params["ImportToken"])
    assert sdk.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "imported"
    # EXTERNAL-only operations on an Aliyun_KMS key.
    aliyun = new_key(sdk)
    fails(sdk, "Unsupported.Origin", 400, "GetParametersForImport", KeyId=aliyun,
          WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048")
    fails(sdk, "Unsupported.Origin", 400, "DeleteKeyMaterial", KeyId=aliyun)


# ------------------------------------------------------------------ errors


def test_error_codes_and_statuses(sdk):
    key = new_key(sdk)
    fails(sdk, "Forbidden.KeyNotFound", 404, "DescribeKey", KeyId="not-a-key")
    fails(sdk, "Forbidden.KeyNotFound", 404, "DescribeKey", KeyId=str(uuid.uuid4()))
    fails(sdk, "InvalidParameter", 400, "ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=3)
    fails(sdk, "InvalidParameter", 400, "CreateKey", Origin="external")
    fails(sdk, "InvalidParameter", 400, "ListKeys", PageSize=101)
    fails(sdk, "InvalidParameter", 400, "Decrypt", CiphertextBlob="AbC+/dEf==")
    fails(sdk, "MissingParameter", 400, "Encrypt", KeyId=key, Plaintext="")


def test_missing_parameters(gateway):
    # The tea SDK drops parameters left as None, so both SDKs can send a
    # request without its required parameters.
    for kind in ("old", "tea-acs3", "tea-v2"):
        sdk = make_sdk(kind, gateway.endpoint)
        err = fails(sdk, "MissingParameter", 400, "DescribeKey")
        assert "KeyId" in str(err)
        fails(sdk, "MissingParameter", 400, "CreateAlias", KeyId="k")


def test_unknown_action_through_the_old_sdk(gateway):
    sdk = make_sdk("old", gateway.endpoint)
    with pytest.raises(SdkError) as info:
        sdk.do(sdk.request("NoSuchAction", {}))
    assert (info.value.code, info.value.status) == ("InvalidAction.NotFound", 404)


@pytest.mark.parametrize("kind", ["old", "tea-acs3", "tea-v2"])
def test_wrong_credentials(gateway, kind):
    bad_secret = make_sdk(kind, gateway.endpoint, secret="wrong")
    fails(bad_secret, "IncompleteSignature", 400, "ListKeys")
    bad_id = make_sdk(kind, gateway.endpoint, access_key_id="nobody")
    fails(bad_id, "InvalidAccessKeyId.NotFound", 404, "ListKeys")


def test_xml_responses(gateway):
    # Both SDKs ask for JSON (the old one forces it), so XML is asked for
    # here by a request signed in the test.
    key = new_key(make_sdk("old", gateway.endpoint))
    status, body = http("GET", v1_signed_url(gateway.endpoint, {"Action": "DescribeKey", "KeyId": key, "Format": "XML"}))
    assert status == 200, body
    root = ET.fromstring(body)
    assert root.tag == "DescribeKeyResponse"
    assert root.find("KeyMetadata/KeyId").text == key
    assert root.find("RequestId").text
    status, body = http("GET", v1_signed_url(gateway.endpoint, {"Action": "ListKeys", "PageSize": "100", "Format": "xml"}))
    page = ET.fromstring(body)
    assert key in [k.find("KeyId").text for k in page.findall("Keys/Key")]
    status, body = http("GET", v1_signed_url(gateway.endpoint, {"Action": "DescribeKey", "KeyId": "nope", "Format": "XML"}))
    root = ET.fromstring(body)
    assert (status, root.tag, root.find("Code").text, root.find("HttpStatus").text) == (
        404, "Error", "Forbidden.KeyNotFound", "404")


def test_old_sdk_request_classes(gateway):
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkkms.request.v20160120.CreateKeyRequest import CreateKeyRequest
    from aliyunsdkkms.request.v20160120.DecryptRequest import DecryptRequest
    from aliyunsdkkms.request.v20160120.DescribeKeyRequest import DescribeKeyRequest
    from aliyunsdkkms.request.v20160120.EncryptRequest import EncryptRequest

    client = AcsClient(ACCESS_KEY_ID, ACCESS_KEY_SECRET, "cn-hangzhou")

    def send(req):
        req.set_endpoint(gateway.endpoint)
        req.set_protocol_type("http")
        return json.loads(client.do_action_with_exception(req))

    req = CreateKeyRequest()
    req.set_Description("request classes")
    key = send(req)["KeyMetadata"]["KeyId"]
    req = DescribeKeyRequest()
    req.set_KeyId(key)
    assert send(req)["KeyMetadata"]["Description"] == "request classes"
    req = EncryptRequest()
    req.set_KeyId(key)
    req.set_Plaintext(TRICKY_TEXT)
    req.set_EncryptionContext(json.dumps({"x": "y"}))
    blob = send(req)["CiphertextBlob"]
    req = DecryptRequest()
    req.set_CiphertextBlob(blob)
    req.set_EncryptionContext(json.dumps({"x": "y"}))
    assert send(req)["Plaintext"] == TRICKY_TEXT


# ------------------------------------------------- raw HTTP at the gateway


def v1_signed_url(endpoint, params, method="GET", secret=ACCESS_KEY_SECRET, timestamp=None, nonce=None):
    """A v1 HMAC-SHA1 request URL, signed here (reference section 1.4)."""
    now = timestamp or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    full = {
        "Format": "JSON", "Version": "2016-01-20", "AccessKeyId": ACCESS_KEY_ID,
        "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex, "Timestamp": now,
    }
    full.update(params)
    enc = lambda s: urllib.parse.quote(s, safe="~")
    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(full.items()))
    to_sign = f"{method}&{enc('/')}&{enc(canonical)}"
    sig = base64.b64encode(hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
    full["Signature"] = sig
    return f"http://{endpoint}/?" + urllib.parse.urlencode(full)


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_raw_get_signed_here(gateway):
    status, body = http("GET", v1_signed_url(gateway.endpoint, {"Action": "DescribeRegions"}))
    assert status == 200, body
    assert json.loads(body)["Regions"]["Region"] == [{"RegionId": "cn-hangzhou"}]


def test_replayed_nonce(gateway):
    url = v1_signed_url(gateway.endpoint, {"Action": "ListKeys"})
    assert http("GET", url)[0] == 200
    status, body = http("GET", url)
    assert (status, json.loads(body)["Code"]) == (400, "SignatureNonceUsed")


def test_stale_timestamp(gateway):
    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20))
    url = v1_signed_url(gateway.endpoint, {"Action": "ListKeys"}, timestamp=old.strftime("%Y-%m-%dT%H:%M:%SZ"))
    status, body = http("GET", url)
    assert (status, json.loads(body)["Code"]) == (400, "IllegalTimestamp")


def test_unsigned_and_unsupported_methods(gateway):
    status, body = http("GET", f"http://{gateway.endpoint}/?Action=ListKeys")
    assert (status, json.loads(body)["Code"]) == (400, "IncompleteSignature")
    status, body = http("GET", f"http://{gateway.endpoint}/?Action=ListKeys&Format=XML")
    assert status == 400 and ET.fromstring(body).find("Code").text == "IncompleteSignature"
    for method in ("PUT", "DELETE", "PATCH"):
        status, body = http(method, v1_signed_url(gateway.endpoint, {"Action": "ListKeys"}))
        error = json.loads(body)
        assert (status, error["Code"], error["HttpStatus"]) == (403, "UnsupportedHTTPMethod", 403)


def test_form_body_post(gateway):
    url = v1_signed_url(gateway.endpoint, {"Action": "CreateKey", "Description": "from a form"}, method="POST")
    query = url.split("?", 1)[1]
    status, body = http("POST", f"http://{gateway.endpoint}/", body=query.encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    assert json.loads(body)["KeyMetadata"]["Description"] == "from a form"


def test_malformed_requests_never_answer_500(gateway):
    base = f"http://{gateway.endpoint}"
    for target in ("/", "/?", "/?&&&", "/?%zz=%", "/?Action", "/?Signature=%FF%FE",
                   "/deep/path?Action=ListKeys", "/?" + "A=1&" * 2000):
        status, _ = http("GET", base + target)
        assert 400 <= status < 500, target
    for body in (b"", b"\xff\xfe", b"Action=ListKeys&Signature=x", b"=" * 10000):
        status, _ = http("POST", base + "/", body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert 400 <= status < 500, body[:20]
    auth = {"Authorization": "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host,Signature=00"}
    status, body = http("POST", base + "/", headers=auth)
    assert (status, json.loads(body)["Code"]) == (400, "IncompleteSignature")
    status, body = http("POST", base + "/", body=b"x" * (2 << 20),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400, body


def test_sigint_stops_cleanly_and_the_store_persists():
    import signal
    with tempfile.TemporaryDirectory() as data_dir:
        gw = Gateway(data_dir)
        key = new_key(make_sdk("tea-acs3", gw.endpoint), Description="kept")
        assert gw.stop(signal.SIGINT) == 0
        gw = Gateway(data_dir)
        sdk = make_sdk("old", gw.endpoint)
        assert sdk.call("DescribeKey", KeyId=key)["KeyMetadata"]["Description"] == "kept"
        assert gw.stop() == 0
