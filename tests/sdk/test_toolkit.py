"""The testing toolkit through the official SDKs: faults injected in
`localkms serve` (`--fault`) reach the SDKs as the API's retryable errors, an
application's retry loop rides them out, and the audit log (`--audit-log`)
records each call with the RequestId the SDK saw."""

import json
import os
import tempfile

import pytest
from aliyunsdkcore.client import AcsClient

from conftest import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    REGION,
    Gateway,
    SdkError,
    make_sdk,
)


@pytest.fixture
def faulty_gateway():
    with tempfile.TemporaryDirectory() as tmp:
        audit = os.path.join(tmp, "audit.jsonl")
        gw = Gateway(
            os.path.join(tmp, "data"),
            extra_args=[
                "--fault", "Encrypt:3:Throttling",
                "--fault", "GenerateDataKey:1:ServiceUnavailable",
                "--fault", "ListKeys:1:InternalFailure",
                "--audit-log", audit,
            ],
        )
        gw.audit_path = audit
        yield gw
        assert gw.stop() == 0


def with_retries(call, attempts=5):
    """An application's retry loop (without the sleep between attempts)."""
    failures = []
    for _ in range(attempts):
        try:
            return call(), failures
        except SdkError as e:
            if e.code not in ("Rejected.Throttling", "ServiceUnavailableTemporary"):
                raise
            failures.append((e.code, e.status))
    raise AssertionError(f"gave up after {failures}")


def test_injected_faults_reach_the_sdks_and_retries_recover(faulty_gateway):
    old = make_sdk("old", faulty_gateway.endpoint)
    # The application does its own retrying here, not the SDK's.
    old.client = AcsClient(ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION, auto_retry=False)
    key = old.call("CreateKey")["KeyMetadata"]["KeyId"]

    encrypted, failures = with_retries(lambda: old.call("Encrypt", KeyId=key, Plaintext="hi"))
    assert failures == [("Rejected.Throttling", 429)] * 3
    assert encrypted["KeyId"] == key

    tea = make_sdk("tea-acs3", faulty_gateway.endpoint)
    generated, failures = with_retries(lambda: tea.call("GenerateDataKey", KeyId=key))
    assert failures == [("ServiceUnavailableTemporary", 503)]
    assert generated["KeyId"] == key

    v2 = make_sdk("tea-v2", faulty_gateway.endpoint)
    with pytest.raises(SdkError) as info:
        v2.call("ListKeys")
    assert (info.value.code, info.value.status) == ("InternalFailure", 500)
    assert v2.call("ListKeys")["TotalCount"] == 1

    with open(faulty_gateway.audit_path) as f:
        events = [json.loads(line) for line in f]
    outcomes = [(e["Action"], e["Outcome"]) for e in events]
    assert outcomes == [
        ("CreateKey", "Success"),
        *[("Encrypt", "Rejected.Throttling")] * 3,
        ("Encrypt", "Success"),
        ("GenerateDataKey", "ServiceUnavailableTemporary"),
        ("GenerateDataKey", "Success"),
        ("ListKeys", "InternalFailure"),
        ("ListKeys", "Success"),
    ]
    # The audit log and the SDK saw the same RequestId.
    assert events[4]["RequestId"] == encrypted["RequestId"]
    assert events[6]["RequestId"] == generated["RequestId"]
    assert events[4]["KeyId"] == key
    assert set(events[4]) == {"Time", "Action", "KeyId", "KeyVersionId", "Outcome", "RequestId"}
    # No plaintext or data key in the log.
    text = json.dumps(events)
    assert generated["Plaintext"] not in text
