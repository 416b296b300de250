# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Subscription preview features the collection depends on, read before anything is written.

Manual upgrade of Flexible instances (``manualupgrade`` with VM names) is documented as preview, and moving
them to a new image reference that way needs the subscription feature
``Microsoft.Compute/ImageReferenceUpgradeForVmoVMs``. Azure refuses such an upgrade otherwise, so a rollout
would learn it mid-batch, after the model was changed. The registration is read with one ARM GET
(Features - Get, ``Microsoft.Features``) sent through the pipeline of the compute client the module already
has: azure-mgmt-resource is not a requirement.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from . import _rest as rest
from ._instance_state import runs_image

FEATURES_API_VERSION = "2021-07-01"
NAMESPACE = "Microsoft.Compute"
IMAGE_UPGRADE_FEATURE = "ImageReferenceUpgradeForVmoVMs"
READ_PERMISSION = "Microsoft.Features/providers/features/read"
REGISTERED = "Registered"

# Azure documents Flexible rolling upgrades as a preview too (feature VMSSFlexRollingUpgrade), and asks for the
# same feature for image changes there (learn.microsoft.com, virtual-machine-scale-sets-maxsurge): say so.
ALTERNATIVES = ("Or roll out without manual upgrades: rollout_strategy blue_green (a new scale set; "
                "fleetops.vmss.blue_green), or azure_rolling (Azure's rolling upgrade, upgrade_policy mode Rolling; "
                "fleetops.vmss.rolling_upgrade), which on a Flexible scale set is itself a preview needing the "
                "feature VMSSFlexRollingUpgrade (and, Azure documents, this one for image changes).")


def feature_path(subscription_id: str, feature: str = IMAGE_UPGRADE_FEATURE) -> str:
    return ("/subscriptions/%s/providers/Microsoft.Features/providers/%s/features/%s?api-version=%s"
            % (subscription_id, NAMESPACE, feature, FEATURES_API_VERSION))


def read_state(client, subscription_id: str, feature: str = IMAGE_UPGRADE_FEATURE) -> Dict[str, Any]:
    """``{"status": HTTP status, "state": registration state or None}``; 403 and 404 are answers, not errors.

    Other errors (retries exhausted on 429/5xx, ...) raise what the SDK raises, with the ARM error code."""
    from azure.core.rest import HttpRequest  # pylint: disable=import-outside-toplevel

    response = rest.send(client, HttpRequest("GET", feature_path(subscription_id, feature)))
    if response.status_code in (403, 404):
        return {"status": response.status_code, "state": None}
    rest.raise_for_status(response)
    return {"status": response.status_code, "state": ((response.json() or {}).get("properties") or {}).get("state")}


def image_upgrade_problem(answer: Dict[str, Any], scale_set: str) -> Optional[str]:
    """Why instances of a Flexible scale set cannot be moved to a new image by manual upgrade, or None. Pure."""
    full = "%s/%s" % (NAMESPACE, IMAGE_UPGRADE_FEATURE)
    if answer["status"] == 403:
        return ("cannot read the registration of the subscription feature %s, which manual upgrades of the Flexible "
                "scale set %s to a new image need: the caller lacks the permission %s (AuthorizationFailed). Grant "
                "it (docs/fleetops-operator-role.json has it). %s" % (full, scale_set, READ_PERMISSION, ALTERNATIVES))
    if answer["state"] == REGISTERED:
        return None
    state = answer["state"] or ("FeatureNotFound" if answer["status"] == 404 else "unknown")
    return ("the Flexible scale set %s would move its instances to a new image by manual upgrade, an Azure preview "
            "that needs the subscription feature %s registered (it is %s). Register it: az feature register "
            "--namespace %s --name %s (wait until it is Registered), then az provider register -n %s. %s"
            % (scale_set, full, state, NAMESPACE, IMAGE_UPGRADE_FEATURE, NAMESPACE, ALTERNATIVES))


def image_changes(tracker, before: Optional[Dict[str, Any]], target: Optional[Dict[str, Any]]) -> bool:
    """Whether a rollout moves instances to another image: the model change touches the image, or (resuming or
    rolling back, the model already changed) the rollback point's image is not the target's."""
    if tracker:
        return tracker.touches("image")
    old, new = (before or {}).get("image"), (target or {}).get("image")
    return bool(new) and runs_image(old, new) is not True


def check_image_upgrade(client, subscription_id: str, scale_set: str) -> Optional[str]:
    """One read of the feature registration: the problem (a sentence) or None."""
    return image_upgrade_problem(read_state(client, subscription_id), scale_set)
