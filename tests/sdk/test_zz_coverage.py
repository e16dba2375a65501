"""Runs last (files run in name order): every action of the wire layer's
table succeeded through each SDK mode during this session."""

import re

from conftest import CALLED, ROOT, SDKS


def wire_actions():
    source = (ROOT / "src" / "wire" / "mod.rs").read_text()
    table = source.split("static ACTIONS", 1)[1].split("];", 1)[0]
    return set(re.findall(r'name: "(\w+)"', table))


def test_every_action_succeeded_through_every_sdk_mode():
    actions = wire_actions()
    assert len(actions) >= 22
    missing = {(sdk, a) for sdk in SDKS for a in actions} - CALLED
    assert not missing, f"never called successfully: {sorted(missing)}"
