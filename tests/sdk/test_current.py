"""The rest of the current API through the official Python SDKs, in every SDK
mode: ExportDataKey, GenerateAndExportDataKey, deletion protection, key
policies, batch tags (both list forms: the old SDK sends JSON strings, the
3.3.1 SDK flattened `Tag.N.Key`/`ResourceId.N`), DryRun, the account calls,
and the refused instance actions."""

import base64
import json
import re
import uuid

import pytest
from alibabacloud_kms20160120 import models as tea_models
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import REFUSED, ROOT, SdkError


def fails(sdk, code, status, action, **params):
    with pytest.raises(SdkError) as info:
        sdk.call(action, **params)
    assert (info.value.code, info.value.status) == (code, status), str(info.value)
    return info.value


def new_key(sdk, **params):
    return sdk.call("CreateKey", **params)["KeyMetadata"]


def context(sdk, ctx):
    """EncryptionContext as each SDK takes it: JSON text, or a dict."""
    return json.dumps(ctx) if sdk.name == "old" else ctx


def tags(sdk, pairs, model):
    """The `Tag` list: dicts (sent as JSON by the old SDK), or models."""
    if sdk.name == "old":
        return [{"Key": k, "Value": v} for k, v in pairs]
    return [model(key=k, value=v) for k, v in pairs]


@pytest.fixture(scope="module")
def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, base64.b64encode(der).decode()


def unwrap(key, blob, sha):
    h = hashes.SHA256() if sha == 256 else hashes.SHA1()
    return key.decrypt(base64.b64decode(blob),
                       padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None))


def test_export_and_generate_and_export(sdk, rsa_key):
    private, public = rsa_key
    key_id = new_key(sdk)["KeyId"]
    ctx = {"order": "42"}
    gdk = sdk.call("GenerateDataKey", KeyId=key_id, EncryptionContext=context(sdk, ctx))
    for alg, sha in (("RSAES_OAEP_SHA_256", 256), ("RSAES_OAEP_SHA_1", 1)):
        out = sdk.call("ExportDataKey", CiphertextBlob=gdk["CiphertextBlob"],
                       EncryptionContext=context(sdk, ctx), PublicKeyBlob=public,
                       WrappingAlgorithm=alg, WrappingKeySpec="RSA_2048")
        assert (out["KeyId"], out["KeyVersionId"]) == (gdk["KeyId"], gdk["KeyVersionId"])
        assert unwrap(private, out["ExportedDataKey"], sha) == base64.b64decode(gdk["Plaintext"])
    both = sdk.call("GenerateAndExportDataKey", KeyId=key_id, NumberOfBytes=16,
                    PublicKeyBlob=public, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                    WrappingKeySpec="RSA_2048")
    assert "Plaintext" not in both
    opened = sdk.call("Decrypt", CiphertextBlob=both["CiphertextBlob"])
    assert unwrap(private, both["ExportedDataKey"], 256) == base64.b64decode(opened["Plaintext"])
    e = fails(sdk, "InvalidParameter", 400, "ExportDataKey",
              CiphertextBlob=gdk["CiphertextBlob"], EncryptionContext=context(sdk, ctx),
              PublicKeyBlob="AAAA", WrappingAlgorithm="RSAES_OAEP_SHA_256",
              WrappingKeySpec="RSA_2048")
    assert "PublicKeyBlob" in e.message


def test_deletion_protection(sdk):
    meta = new_key(sdk)
    described = sdk.call("DescribeKey", KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["DeletionProtection"] == "Disabled"
    sdk.call("SetDeletionProtection", ProtectedResourceArn=meta["Arn"],
             EnableDeletionProtection=True, DeletionProtectionDescription="billing")
    got = sdk.call("DescribeKey", KeyId=meta["KeyId"])["KeyMetadata"]
    assert (got["DeletionProtection"], got["DeletionProtectionDescription"]) == ("Enabled", "billing")
    fails(sdk, "Rejected.DeletionProtection", 409, "ScheduleKeyDeletion",
          KeyId=meta["KeyId"], PendingWindowInDays=7)
    sdk.call("SetDeletionProtection", KeyId=meta["KeyId"], EnableDeletionProtection=False)
    sdk.call("ScheduleKeyDeletion", KeyId=meta["KeyId"], PendingWindowInDays=7)
    fails(sdk, "Rejected.StateModifiedFailed", 409, "SetDeletionProtection",
          KeyId=meta["KeyId"], EnableDeletionProtection=True)


def test_key_policies(sdk):
    policy = json.dumps({"Version": "1", "Statement": []})
    key_id = new_key(sdk, Policy=policy)["KeyId"]
    assert sdk.call("GetKeyPolicy", KeyId=key_id, PolicyName="default")["Policy"] == policy
    other = json.dumps({"Version": "1", "Statement": [{"Effect": "Deny"}]})
    sdk.call("SetKeyPolicy", KeyId=key_id, Policy=other, PolicyName="default")
    assert sdk.call("GetKeyPolicy", KeyId=key_id)["Policy"] == other
    fails(sdk, "InvalidParameter", 400, "SetKeyPolicy", KeyId=key_id, Policy="[1]")


def test_batch_tags_on_keys_and_secrets(sdk):
    a, b = new_key(sdk)["KeyId"], new_key(sdk)["KeyId"]
    sdk.call("TagResources", RegionId="cn-hangzhou", ResourceType="key", ResourceId=[a, b],
             Tag=tags(sdk, [("team", "pay"), ("env", "prod")], tea_models.TagResourcesRequestTag))
    listed = sdk.call("ListTagResources", RegionId="cn-hangzhou", ResourceType="key",
                      ResourceId=[a, b])
    rows = {(r["ResourceId"], r["TagKey"], r["TagValue"])
            for r in listed["TagResources"]["TagResource"]}
    assert rows == {(k, t, v) for k in (a, b) for t, v in (("team", "pay"), ("env", "prod"))}
    assert listed.get("NextToken", "") == ""
    filtered = sdk.call("ListTagResources", RegionId="cn-hangzhou", ResourceType="key",
                        ResourceId=[a],
                        Tag=tags(sdk, [("env", "")], tea_models.ListTagResourcesRequestTag))
    assert [r["TagKey"] for r in filtered["TagResources"]["TagResource"]] == ["env"]
    sdk.call("UntagResources", RegionId="cn-hangzhou", ResourceType="key", ResourceId=[a],
             TagKey=["env"])
    sdk.call("UntagResources", RegionId="cn-hangzhou", ResourceType="key", ResourceId=[b],
             All=True)
    assert [t["TagKey"] for t in sdk.call("ListResourceTags", KeyId=a)["Tags"]["Tag"]] == ["team"]
    assert sdk.call("ListResourceTags", KeyId=b)["Tags"]["Tag"] == []
    # Secrets.
    name = f"tagged-{uuid.uuid4().hex[:8]}"
    sdk.call("CreateSecret", SecretName=name, SecretData="v", VersionId="v1")
    sdk.call("TagResources", RegionId="cn-hangzhou", ResourceType="secret", ResourceId=[name],
             Tag=tags(sdk, [("k", "v")], tea_models.TagResourcesRequestTag))
    got = sdk.call("DescribeSecret", SecretName=name, FetchTags=True)
    assert got["Tags"]["Tag"] == [{"TagKey": "k", "TagValue": "v"}]
    # Per resource limits: a key holds 10 tags.
    many = [(f"t{i}", "") for i in range(11)]
    fails(sdk, "Rejected.LimitExceeded", 400, "TagResources", RegionId="cn-hangzhou",
          ResourceType="key", ResourceId=[a],
          Tag=tags(sdk, many, tea_models.TagResourcesRequestTag))
    fails(sdk, "Forbidden.KeyNotFound", 404, "TagResources", RegionId="cn-hangzhou",
          ResourceType="key", ResourceId=[str(uuid.uuid4())],
          Tag=tags(sdk, [("k", "v")], tea_models.TagResourcesRequestTag))


DRY_RUN_ACTIONS = {
    "Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncrypt",
    "ExportDataKey", "GenerateAndExportDataKey", "GetSecretValue",
}


def test_dry_run(sdk, rsa_key):
    _, public = rsa_key
    key_id = new_key(sdk)["KeyId"]
    other = new_key(sdk)["KeyId"]
    blob = sdk.call("Encrypt", KeyId=key_id, Plaintext="p")["CiphertextBlob"]
    data_key = sdk.call("GenerateDataKeyWithoutPlaintext", KeyId=key_id)["CiphertextBlob"]
    name = f"dry-{uuid.uuid4().hex[:8]}"
    sdk.call("CreateSecret", SecretName=name, SecretData="v", VersionId="v1")
    wrap = dict(PublicKeyBlob=public, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                WrappingKeySpec="RSA_2048")
    requests = {
        "Encrypt": dict(KeyId=key_id, Plaintext="hello"),
        "Decrypt": dict(CiphertextBlob=blob),
        "GenerateDataKey": dict(KeyId=key_id),
        "GenerateDataKeyWithoutPlaintext": dict(KeyId=key_id),
        "ReEncrypt": dict(CiphertextBlob=blob, DestinationKeyId=other),
        "ExportDataKey": dict(CiphertextBlob=data_key, **wrap),
        "GenerateAndExportDataKey": dict(KeyId=key_id, **wrap),
        "GetSecretValue": dict(SecretName=name),
    }
    assert set(requests) == DRY_RUN_ACTIONS
    for action, params in requests.items():
        fails(sdk, "DryRunOperationError", 400, action, DryRun="true", **params)
    # A dry run changes nothing: a disabling is not undone by it, and a bad
    # request answers the real call's error.
    sdk.call("DisableKey", KeyId=other)
    fails(sdk, "Rejected.Disabled", 409, "GenerateDataKey", KeyId=other, DryRun="true")
    fails(sdk, "Forbidden.ResourceNotFound", 404, "GetSecretValue", SecretName="no-such",
          DryRun="true")


def test_account_calls(sdk):
    assert sdk.call("DescribeAccountKmsStatus")["AccountStatus"] == "Enabled"
    sdk.call("OpenKmsService")


def refused_actions():
    source = (ROOT / "src" / "wire" / "current.rs").read_text()
    table = source.split("static REFUSED", 1)[1].split("];", 1)[0]
    return re.findall(r'\("(\w+)", \w+\)', table)


@pytest.mark.parametrize("action", refused_actions())
def test_refused_actions_say_why(sdk, action):
    e = fails(sdk, "UnsupportedOperation", 400, action)
    assert action in e.message
    REFUSED.add((sdk.name, action))
