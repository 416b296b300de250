"""Microsoft.Features: preview features of a subscription (the classic feature registration API, 2021-07-01).

A feature is `{namespace}/{name}` of a catalogue (below); any other name is 404 FeatureNotFound. Its
registration is one kv record per subscription and feature, {"state", "since"}: `register` answers
Registering, which turns Registered after `feature_registration` (scaled); `unregister` answers
Unregistering, which turns Unregistered after the same time. Nothing polls: the state is read off the clock.

Compute asks `registered(ctx, subscription, "Microsoft.Compute", name)` before a preview operation
(ImageReferenceUpgradeForVmoVMs: manual upgrade of Flexible VMs onto a new image reference).
"""
from emulator.arm import ArmError, ok, page
from emulator.server import route

BASE = "/subscriptions/{subscriptionId}/providers/Microsoft.Features"
FEATURE = BASE + "/providers/{resourceProviderNamespace}/features/{featureName}"
TYPE = "Microsoft.Features/providers/features"

# The features the emulator knows, as Azure spells them (learn.microsoft.com, Virtual Machine Scale Sets
# upgrade policy docs: "Register-AzProviderFeature -FeatureName ... -ProviderNamespace Microsoft.Compute").
CATALOGUE = (
    "Microsoft.Compute/ImageReferenceUpgradeForVmoVMs",
    "Microsoft.Compute/VMSSFlexRollingUpgrade",
    "Microsoft.Compute/MaxSurgeRollingUpgrade",
)
_BY_KEY = {name.lower(): name for name in CATALOGUE}
# state while moving -> state once `feature_registration` has passed
_SETTLES = {"Registering": "Registered", "Unregistering": "Unregistered"}


def _key(subscription, full_name):
    return f"features:{subscription.lower()}:{full_name.lower()}"


def _check_subscription(ctx, subscription):
    if subscription.lower() != ctx.subscription_id.lower():
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")


def _canonical(namespace, name):
    full = _BY_KEY.get(f"{namespace}/{name}".lower())
    if full is None:
        raise ArmError(404, "FeatureNotFound", f"The feature '{name}' could not be found.")
    return full


def state(ctx, subscription, full_name, now=None):
    """NotRegistered, Registering, Registered, Unregistering or Unregistered, as of `now`."""
    record = ctx.store.kv_get(_key(subscription, full_name))
    if not record:
        return "NotRegistered"
    now = ctx.clock.now() if now is None else now
    if record["state"] in _SETTLES and now >= record["since"] + ctx.duration("feature_registration"):
        return _SETTLES[record["state"]]
    return record["state"]


def registered(ctx, subscription, namespace, name):
    return state(ctx, subscription, _canonical(namespace, name)) == "Registered"


def document(ctx, subscription, full_name, now=None):
    namespace, name = full_name.split("/", 1)
    return {"properties": {"state": state(ctx, subscription, full_name, now)},
            "id": f"/subscriptions/{subscription}/providers/Microsoft.Features/providers/{namespace}/features/{name}",
            "type": TYPE, "name": full_name}


def _set(ctx, subscription, full_name, moving, settled):
    """Start moving towards `settled` (through `moving`); a feature already there or on its way stays."""
    current = state(ctx, subscription, full_name)
    if current not in (moving, settled):
        ctx.store.kv_set(_key(subscription, full_name), {"state": moving, "since": ctx.clock.now()})


def _feature(ctx, req):
    p = req.params
    _check_subscription(ctx, p["subscriptionId"])
    return p["subscriptionId"], _canonical(p["resourceProviderNamespace"], p["featureName"])


@route("GET", FEATURE, operation_id="Features_Get")
def get_feature(ctx, req):
    subscription, full = _feature(ctx, req)
    return ok(document(ctx, subscription, full))


@route("POST", FEATURE + "/register", operation_id="Features_Register")
def register_feature(ctx, req):
    subscription, full = _feature(ctx, req)
    _set(ctx, subscription, full, "Registering", "Registered")
    return ok(document(ctx, subscription, full))


@route("POST", FEATURE + "/unregister", operation_id="Features_Unregister")
def unregister_feature(ctx, req):
    subscription, full = _feature(ctx, req)
    _set(ctx, subscription, full, "Unregistering", "Unregistered")
    return ok(document(ctx, subscription, full))


@route("GET", BASE + "/providers/{resourceProviderNamespace}/features", operation_id="Features_List")
def list_features(ctx, req):
    _check_subscription(ctx, req.params["subscriptionId"])
    prefix = req.params["resourceProviderNamespace"].lower() + "/"
    items = [document(ctx, req.params["subscriptionId"], full) for full in CATALOGUE if full.lower().startswith(prefix)]
    return ok(page(req, items, ctx.base_url, ctx.page_size))


@route("GET", BASE + "/features", operation_id="Features_ListAll")
def list_all_features(ctx, req):
    _check_subscription(ctx, req.params["subscriptionId"])
    items = [document(ctx, req.params["subscriptionId"], full) for full in CATALOGUE]
    return ok(page(req, items, ctx.base_url, ctx.page_size))
