# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Azure region names: one spelling, and a check that catches a typo before anything is written.

Names are checked against the subscription's own locations (ARM *Subscriptions - List Locations*), the
authority on which regions a subscription may use. Where a cloud does not answer that request, or the
caller may not read it, they are checked against KNOWN_REGIONS: the physical regions of Azure public
cloud, Azure Government and Azure China (``az account list-locations`` names, 2026).
"""

from __future__ import annotations

import difflib
from typing import Iterable, List, Optional, Tuple

KNOWN_REGIONS = frozenset((
    # Azure public cloud
    "australiacentral", "australiacentral2", "australiaeast", "australiasoutheast", "austriaeast",
    "belgiumcentral", "brazilsouth", "brazilsoutheast", "canadacentral", "canadaeast", "centralindia",
    "centralus", "centraluseuap", "chilecentral", "denmarkeast", "eastasia", "eastus", "eastus2", "eastus2euap",
    "francecentral", "francesouth", "germanynorth", "germanywestcentral", "indonesiacentral", "israelcentral",
    "italynorth", "japaneast", "japanwest", "jioindiacentral", "jioindiawest", "koreacentral", "koreasouth",
    "malaysiawest", "mexicocentral", "newzealandnorth", "northcentralus", "northeurope", "norwayeast",
    "norwaywest", "polandcentral", "qatarcentral", "southafricanorth", "southafricawest", "southcentralus",
    "southeastasia", "southindia", "spaincentral", "swedencentral", "swedensouth", "switzerlandnorth",
    "switzerlandwest", "uaecentral", "uaenorth", "uksouth", "ukwest", "westcentralus", "westeurope",
    "westindia", "westus", "westus2", "westus3",
    # Azure Government
    "usdodcentral", "usdodeast", "usgovarizona", "usgoviowa", "usgovtexas", "usgovvirginia",
    # Azure China (21Vianet)
    "chinaeast", "chinaeast2", "chinaeast3", "chinanorth", "chinanorth2", "chinanorth3",
))


def region_key(name: Optional[str]) -> str:
    """``West Europe`` -> ``westeurope``: how ARM compares locations."""
    return "".join(str(name or "").split()).lower()


def unknown_regions(names: Iterable[str], allowed: Iterable[str]) -> List[Tuple[str, Optional[str]]]:
    """(name, suggestion or None) for each name not among ``allowed`` (compared as region keys)."""
    allowed_keys = sorted({region_key(name) for name in allowed})
    unknown = []
    for name in names:
        key = region_key(name)
        if key not in allowed_keys:
            close = difflib.get_close_matches(key, allowed_keys, n=1, cutoff=0.75)
            unknown.append((name, close[0] if close else None))
    return unknown


def unknown_message(what: str, unknown: List[Tuple[str, Optional[str]]], source: str) -> str:
    """``Unknown region in target_regions: westeurpoe (did you mean westeurope?) ...``."""
    shown = ", ".join("%s (did you mean %s?)" % (name, hint) if hint else str(name) for name, hint in unknown)
    return "Unknown region%s in %s: %s; checked against %s." % ("s" if len(unknown) > 1 else "", what, shown, source)


def allowed_regions(client, subscription_id: str) -> Tuple[List[str], str]:
    """(region names, where they come from): the subscription's locations, else KNOWN_REGIONS."""
    # pylint: disable=import-outside-toplevel
    from ._rest import subscription_locations

    locations = subscription_locations(client, subscription_id)
    if locations:
        return [item["name"] for item in locations], "the subscription's locations"
    return sorted(KNOWN_REGIONS), "the Azure regions built into the collection (the subscription's locations could not be listed)"


def check_regions(module, client, names: Iterable[str], what: str) -> None:
    """Raise AzureFailure, before any write, when a name is not a region of the subscription (or cloud)."""
    from ._errors import AzureFailure, arm_errors  # pylint: disable=import-outside-toplevel

    names = [name for name in names if name]
    if not names:
        return
    with arm_errors("list", "the locations of subscription %s" % module.subscription_id):
        allowed, source = allowed_regions(client, module.subscription_id)
    unknown = unknown_regions(names, allowed)
    if unknown:
        raise AzureFailure(unknown_message(what, unknown, source), unknown_regions=[name for name, _hint in unknown])
