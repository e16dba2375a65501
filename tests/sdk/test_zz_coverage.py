"""Runs last (files run in name order): every action of the wire layer's
table succeeded through each SDK mode during this session; the actions that
cannot succeed here (the vendor rotates only managed secrets, which this
library does not hold) were answered with their documented refusal, and so
was every action refused on purpose (KMS instances, application access
points: src/wire/current.rs)."""

import re

from conftest import CALLED, REFUSED, ROOT, SDKS

# Actions no secret of this library can succeed at: Generic secrets do not
# rotate (SPEC section 12).
ALWAYS_REFUSED = {"RotateSecret", "UpdateSecretRotationPolicy"}

# The secrets manager's actions (SPEC section 12), which must be in the table.
SECRET_ACTIONS = {
    "CreateSecret", "GetSecretValue", "BatchGetSecretValue", "PutSecretValue",
    "DescribeSecret", "ListSecrets", "UpdateSecret", "DeleteSecret", "RestoreSecret",
    "ListSecretVersionIds", "UpdateSecretVersionStage", "RotateSecret",
    "UpdateSecretRotationPolicy", "GetRandomPassword", "GetSecretPolicy", "SetSecretPolicy",
}


def wire_actions():
    source = (ROOT / "src" / "wire" / "mod.rs").read_text()
    table = source.split("static ACTIONS", 1)[1].split("];", 1)[0]
    return set(re.findall(r'name: "(\w+)"', table))


# The current API's actions of issue 17, which must be in the table.
CURRENT_ACTIONS = {
    "ExportDataKey", "GenerateAndExportDataKey", "SetDeletionProtection", "GetKeyPolicy",
    "SetKeyPolicy", "TagResources", "UntagResources", "ListTagResources",
    "DescribeAccountKmsStatus", "OpenKmsService",
}


def refused_actions():
    """The actions refused on purpose, with a reason (src/wire/current.rs)."""
    source = (ROOT / "src" / "wire" / "current.rs").read_text()
    table = source.split("static REFUSED", 1)[1].split("];", 1)[0]
    return set(re.findall(r'\("(\w+)", \w+\)', table))


def test_every_action_succeeded_through_every_sdk_mode():
    actions = wire_actions()
    assert len(actions) >= 22
    assert SECRET_ACTIONS <= actions
    assert CURRENT_ACTIONS <= actions
    missing = {(sdk, a) for sdk in SDKS for a in actions - ALWAYS_REFUSED} - CALLED
    assert not missing, f"never called successfully: {sorted(missing)}"
    unrefused = {(sdk, a) for sdk in SDKS for a in ALWAYS_REFUSED} - REFUSED
    assert not unrefused, f"never answered with their refusal: {sorted(unrefused)}"


def test_every_refused_action_said_why_through_every_sdk_mode():
    refused = refused_actions()
    assert len(refused) >= 29
    assert not refused & wire_actions()
    missing = {(sdk, a) for sdk in SDKS for a in refused} - REFUSED
    assert not missing, f"never answered with their refusal: {sorted(missing)}"
