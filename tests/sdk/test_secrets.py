"""The secrets manager through the official Python SDKs, in every SDK mode:
each action and its error paths (SPEC section 12)."""

import base64
import json
import uuid

import pytest
from alibabacloud_kms20160120 import models as tea_models

from conftest import REFUSED, SdkError


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def fails(sdk, code, status, action, **params):
    with pytest.raises(SdkError) as info:
        sdk.call(action, **params)
    assert (info.value.code, info.value.status) == (code, status), str(info.value)
    return info.value


def stages(v):
    return v["VersionStages"]["VersionStage"]


def new_secret(sdk, value="s3cret", **params):
    name = unique("app/db-")
    sdk.call("CreateSecret", SecretName=name, SecretData=value, VersionId="v1", **params)
    return name


def secrets_list(sdk, entries):
    """The SecretsList parameter as each SDK takes it."""
    if sdk.name == "old":
        return json.dumps(entries)
    return [tea_models.BatchGetSecretValueRequestSecretsList(
        secret_name=e.get("SecretName"), version_stage=e.get("VersionStage"),
        version_id=e.get("VersionId")) for e in entries]


def test_create_get_put_and_stages(sdk):
    name = unique("app/db-")
    created = sdk.call("CreateSecret", SecretName=name, SecretData="one é & <x>", VersionId="v1",
                       Description="db password",
                       Tags=json.dumps([{"TagKey": "team", "TagValue": "pay"}]))
    assert created["SecretName"] == name and created["VersionId"] == "v1"
    assert created["SecretType"] == "Generic"
    assert created["Arn"].endswith(f":secret/{name}")
    got = sdk.call("GetSecretValue", SecretName=name)
    assert got["SecretData"] == "one é & <x>"
    assert got["SecretDataType"] == "text"
    assert stages(got) == ["ACSCurrent"]
    put = sdk.call("PutSecretValue", SecretName=name, SecretData="two", VersionId="v2")
    assert put["VersionId"] == "v2" and stages(put) == ["ACSCurrent"]
    assert sdk.call("GetSecretValue", SecretName=created["Arn"])["SecretData"] == "two"
    prev = sdk.call("GetSecretValue", SecretName=name, VersionStage="ACSPrevious")
    assert (prev["SecretData"], prev["VersionId"]) == ("one é & <x>", "v1")
    assert sdk.call("GetSecretValue", SecretName=name, VersionId="v1")["SecretData"] == "one é & <x>"
    # Idempotent repeat; a different value under the same id is refused.
    assert sdk.call("PutSecretValue", SecretName=name, SecretData="two", VersionId="v2")["VersionId"] == "v2"
    fails(sdk, "Rejected.ResourceExist", 409, "PutSecretValue", SecretName=name,
          SecretData="other", VersionId="v2")
    # A pending version, then promoted.
    pending = sdk.call("PutSecretValue", SecretName=name, SecretData="three", VersionId="v3",
                       VersionStages=json.dumps(["ACSPending"]))
    assert stages(pending) == ["ACSPending"]
    sdk.call("UpdateSecretVersionStage", SecretName=name, VersionStage="ACSCurrent",
             RemoveFromVersion="v2", MoveToVersion="v3")
    assert sdk.call("GetSecretValue", SecretName=name)["SecretData"] == "three"
    versions = sdk.call("ListSecretVersionIds", SecretName=name, IncludeDeprecated="true")
    assert versions["SecretName"] == name and versions["TotalCount"] == 3
    by_id = {v["VersionId"]: stages(v) for v in versions["VersionIds"]["VersionId"]}
    assert by_id == {"v1": [], "v2": ["ACSPrevious"], "v3": ["ACSCurrent", "ACSPending"]}
    assert sdk.call("ListSecretVersionIds", SecretName=name)["TotalCount"] == 2
    # Binary values travel as base64.
    raw = base64.b64encode(bytes(range(256))).decode()
    bname = unique("bin-")
    sdk.call("CreateSecret", SecretName=bname, SecretData=raw, SecretDataType="binary", VersionId="1")
    got = sdk.call("GetSecretValue", SecretName=bname)
    assert (got["SecretData"], got["SecretDataType"]) == (raw, "binary")


def test_secret_errors(sdk):
    name = new_secret(sdk)
    fails(sdk, "MissingParameter", 400, "CreateSecret", SecretName=unique("x"), SecretData="v")
    fails(sdk, "MissingParameter", 400, "PutSecretValue", SecretName=name, SecretData="v")
    fails(sdk, "Rejected.ResourceExist", 409, "CreateSecret", SecretName=name, SecretData="v",
          VersionId="v1")
    fails(sdk, "InvalidParameter", 400, "CreateSecret", SecretName="acs/x", SecretData="v",
          VersionId="v1")
    fails(sdk, "InvalidParameter", 400, "CreateSecret", SecretName=unique("big"),
          SecretData="x" * 30721, VersionId="v1")
    e = fails(sdk, "UnsupportedOperation", 400, "CreateSecret", SecretName=unique("rds"),
              SecretData="v", VersionId="v1", SecretType="Rds")
    assert "Rds" in e.message
    fails(sdk, "Forbidden.ResourceNotFound", 404, "GetSecretValue", SecretName=unique("none"))
    fails(sdk, "Forbidden.ResourceNotFound", 404, "GetSecretValue", SecretName=name,
          VersionStage="nope")
    fails(sdk, "Forbidden.ResourceNotFound", 404, "DescribeSecret", SecretName=unique("none"))
    fails(sdk, "InvalidParameter", 400, "UpdateSecretVersionStage", SecretName=name,
          VersionStage="ACSCurrent", RemoveFromVersion="v1")
    fails(sdk, "Forbidden.ResourceNotFound", 404, "UpdateSecretVersionStage", SecretName=name,
          VersionStage="blue", MoveToVersion="v9")
    fails(sdk, "MissingParameter", 400, "RotateSecret", SecretName=name)
    fails(sdk, "UnsupportedOperation", 400, "RotateSecret", SecretName=name, VersionId="v2")
    REFUSED.add((sdk.name, "RotateSecret"))
    fails(sdk, "UnsupportedOperation", 400, "UpdateSecretRotationPolicy", SecretName=name,
          EnableAutomaticRotation=True, RotationInterval="7d")
    REFUSED.add((sdk.name, "UpdateSecretRotationPolicy"))
    fails(sdk, "InvalidParameter", 400, "UpdateSecretRotationPolicy", SecretName=name,
          EnableAutomaticRotation=True, RotationInterval="1h")
    fails(sdk, "InvalidParameter", 400, "ListSecrets",
          Filters=json.dumps([{"Key": "Color", "Values": ["x"]}]))
    fails(sdk, "InvalidParameter", 400, "GetRandomPassword", PasswordLength="7")
    fails(sdk, "InvalidParameter", 400, "SetSecretPolicy", SecretName=name, Policy="not json")
    fails(sdk, "InvalidParameter", 400, "DeleteSecret", SecretName=name, RecoveryWindowInDays="6")


def test_disabled_cmk_refuses_get_secret_value(sdk):
    key = sdk.call("CreateKey")["KeyMetadata"]["KeyId"]
    name = new_secret(sdk, EncryptionKeyId=key)
    described = sdk.call("DescribeSecret", SecretName=name)
    assert described["EncryptionKeyId"] == key
    sdk.call("DisableKey", KeyId=key)
    fails(sdk, "Rejected.Disabled", 409, "GetSecretValue", SecretName=name)
    sdk.call("EnableKey", KeyId=key)
    assert sdk.call("GetSecretValue", SecretName=name)["SecretData"] == "s3cret"


def test_default_key_is_a_service_key(sdk):
    name = new_secret(sdk)
    key = sdk.call("DescribeSecret", SecretName=name)["EncryptionKeyId"]
    listed, page = [], 1
    while True:  # the session's store may hold more than a page of keys
        body = sdk.call("ListKeys", PageSize=100, PageNumber=page)
        listed += [k["KeyId"] for k in body["Keys"]["Key"]]
        if len(listed) >= body["TotalCount"] or not body["Keys"]["Key"]:
            break
        page += 1
    assert key in listed
    fails(sdk, "Rejected.ResourceInUse", 409, "DisableKey", KeyId=key)
    fails(sdk, "Rejected.ResourceInUse", 409, "ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)


def test_describe_list_update_and_tags(sdk):
    name = new_secret(sdk, Description="first", Tags=json.dumps([{"TagKey": "tier", "TagValue": "gold"}]))
    d = sdk.call("DescribeSecret", SecretName=name, FetchTags="true")
    assert d["Description"] == "first" and d["SecretType"] == "Generic"
    assert d["CreateTime"] and d["PlannedDeleteTime"] == ""
    assert [(t["TagKey"], t["TagValue"]) for t in d["Tags"]["Tag"]] == [("tier", "gold")]
    sdk.call("UpdateSecret", SecretName=name, Description="second")
    assert sdk.call("DescribeSecret", SecretName=name)["Description"] == "second"
    sdk.call("TagResource", SecretName=name, Tags=json.dumps([{"TagKey": "x", "TagValue": "1"}]))
    sdk.call("UntagResource", SecretName=name, TagKeys=json.dumps(["tier"]))
    page = sdk.call("ListSecrets", FetchTags="true", PageSize=100,
                    Filters=json.dumps([{"Key": "SecretName", "Values": [name]}]))
    assert page["TotalCount"] == 1 and page["PageSize"] == 100
    entry = page["SecretList"]["Secret"][0]
    assert entry["SecretName"] == name
    assert [(t["TagKey"], t["TagValue"]) for t in entry["Tags"]["Tag"]] == [("x", "1")]
    assert sdk.call("ListSecrets", Filters=json.dumps([{"Key": "TagKey", "Values": ["tier"]},
                                                       {"Key": "SecretName", "Values": [name]}]))["TotalCount"] == 0


def test_delete_restore_and_force(sdk):
    name = new_secret(sdk)
    deleted = sdk.call("DeleteSecret", SecretName=name, RecoveryWindowInDays="7")
    assert deleted["SecretName"] == name and deleted["PlannedDeleteTime"]
    fails(sdk, "Rejected.ResourceInUse", 409, "GetSecretValue", SecretName=name)
    assert sdk.call("DescribeSecret", SecretName=name)["PlannedDeleteTime"] == deleted["PlannedDeleteTime"]
    assert sdk.call("RestoreSecret", SecretName=name)["SecretName"] == name
    fails(sdk, "Rejected.ResourceInUse", 409, "RestoreSecret", SecretName=name)
    assert sdk.call("GetSecretValue", SecretName=name)["SecretData"] == "s3cret"
    sdk.call("DeleteSecret", SecretName=name, ForceDeleteWithoutRecovery="true")
    fails(sdk, "Forbidden.ResourceNotFound", 404, "RestoreSecret", SecretName=name)
    fails(sdk, "Forbidden.ResourceNotFound", 404, "DeleteSecret", SecretName=name)


def test_batch_get_secret_value(sdk):
    a = new_secret(sdk, value="A")
    b = new_secret(sdk, value="B")
    missing = unique("none")
    out = sdk.call("BatchGetSecretValue", SecretsList=secrets_list(
        sdk, [{"SecretName": a}, {"SecretName": b, "VersionStage": "ACSCurrent"}, {"SecretName": missing}]))
    assert [(v["SecretName"], v["SecretData"]) for v in out["SecretValues"]] == [(a, "A"), (b, "B")]
    assert [(e["SecretName"], e["Code"]) for e in out["Errors"]] == [(missing, "Forbidden.ResourceNotFound")]
    fails(sdk, "InvalidParameter", 400, "BatchGetSecretValue",
          SecretsList=secrets_list(sdk, [{"SecretName": a}] * 21))


def test_random_password_and_policy(sdk):
    pw = sdk.call("GetRandomPassword", PasswordLength="24", ExcludePunctuation="true",
                  ExcludeCharacters="abc", RequireEachIncludedType="true")["RandomPassword"]
    assert len(pw) == 24 and pw.isalnum() and not set("abc") & set(pw)
    assert any(c.isdigit() for c in pw) and any(c.isupper() for c in pw)
    digits = sdk.call("GetRandomPassword", ExcludeLowercase="true", ExcludeUppercase="true",
                      ExcludePunctuation="true", ExcludeNumbers="false")["RandomPassword"]
    assert len(digits) == 32 and digits.isdigit()
    name = new_secret(sdk)
    default = sdk.call("GetSecretPolicy", SecretName=name)["Policy"]
    assert json.loads(default)["Version"] == "1"
    policy = json.dumps({"Version": "1", "Statement": []})
    sdk.call("SetSecretPolicy", SecretName=name, Policy=policy, PolicyName="default")
    assert sdk.call("GetSecretPolicy", SecretName=name, PolicyName="default")["Policy"] == policy
