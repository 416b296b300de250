"""Microsoft.Features (feature registration, 2021-07-01) through raw ARM calls (azure-mgmt-resource is not
installed): the shapes the Azure CLI recorded, Registering -> Registered over scaled time, RBAC actions."""
from compute_support import wait_until

API = "2021-07-01"
FEATURE = "ImageReferenceUpgradeForVmoVMs"


def features_path(emu, suffix=""):
    return f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Features{suffix}"


def feature_path(emu, name=FEATURE, namespace="Microsoft.Compute", action=""):
    return features_path(emu, f"/providers/{namespace}/features/{name}{action}")


def get_state(emu, name=FEATURE):
    status, body, _ = emu.arm("GET", feature_path(emu, name), api_version=API)
    assert status == 200, body
    return body["properties"]["state"]


def test_feature_document_as_azure_answers_it(clean):
    emu = clean
    status, body, _ = emu.arm("GET", feature_path(emu, namespace="microsoft.compute", name=FEATURE.lower()),
                              api_version=API)
    assert status == 200
    assert body == {"properties": {"state": "NotRegistered"},
                    "id": f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Features/providers/"
                          f"Microsoft.Compute/features/{FEATURE}",
                    "type": "Microsoft.Features/providers/features",
                    "name": f"Microsoft.Compute/{FEATURE}"}
    status, body, _ = emu.arm("GET", feature_path(emu, name="NoSuchFeature"), api_version=API)
    assert (status, body["error"]["code"]) == (404, "FeatureNotFound")
    assert "NoSuchFeature" in body["error"]["message"]
    status, body, _ = emu.arm("POST", feature_path(emu, name="NoSuchFeature", action="/register"), api_version=API)
    assert (status, body["error"]["code"]) == (404, "FeatureNotFound")
    status, body, _ = emu.arm("GET", f"/subscriptions/00000000-0000-0000-0000-00000000dead/providers/"
                                     f"Microsoft.Features/providers/Microsoft.Compute/features/{FEATURE}",
                              api_version=API)
    assert (status, body["error"]["code"]) == (404, "SubscriptionNotFound")


def test_register_passes_through_registering_then_unregister(clean):
    emu = clean
    status, body, _ = emu.arm("POST", feature_path(emu, action="/register"), api_version=API)
    assert (status, body["properties"]["state"]) == (200, "Registering")
    assert body["name"] == f"Microsoft.Compute/{FEATURE}"
    assert get_state(emu) == "Registering"                 # 180 s realistic, 1.8 s at the tests' time scale
    wait_until(lambda: get_state(emu) == "Registered", timeout=30)
    status, body, _ = emu.arm("POST", feature_path(emu, action="/register"), api_version=API)
    assert body["properties"]["state"] == "Registered"      # registering again changes nothing
    assert get_state(emu, "VMSSFlexRollingUpgrade") == "NotRegistered"   # one feature at a time

    status, listed, _ = emu.arm("GET", features_path(emu, "/providers/Microsoft.Compute/features"), api_version=API)
    assert status == 200
    states = {f["name"]: f["properties"]["state"] for f in listed["value"]}
    assert states[f"Microsoft.Compute/{FEATURE}"] == "Registered"
    assert states["Microsoft.Compute/VMSSFlexRollingUpgrade"] == "NotRegistered"
    status, everything, _ = emu.arm("GET", features_path(emu, "/features"), api_version=API)
    assert status == 200 and {f["name"] for f in everything["value"]} >= set(states)

    status, body, _ = emu.arm("POST", feature_path(emu, action="/unregister"), api_version=API)
    assert (status, body["properties"]["state"]) == (200, "Unregistering")
    wait_until(lambda: get_state(emu) == "Unregistered", timeout=30)


def test_reading_and_registering_are_separate_rbac_actions(clean):
    emu = clean
    reader = emu.control.call("POST", "principals", {"name": "feature-reader", "role": "Reader"})
    token = emu.token(reader["client_id"], reader["secret"])
    status, body, _ = emu.arm("GET", feature_path(emu), api_version=API, token=token)
    assert (status, body["properties"]["state"]) == (200, "NotRegistered")
    status, body, _ = emu.arm("POST", feature_path(emu, action="/register"), api_version=API, token=token)
    assert (status, body["error"]["code"]) == (403, "AuthorizationFailed")
    assert "Microsoft.Features/providers/features/register/action" in body["error"]["message"]
    assert get_state(emu) == "NotRegistered"
    reads_only = emu.control.call("POST", "principals", {"name": "feature-read-only", "role": [
        "Microsoft.Features/providers/features/read"]})
    status, body, _ = emu.arm("GET", feature_path(emu), api_version=API,
                              token=emu.token(reads_only["client_id"], reads_only["secret"]))
    assert status == 200
