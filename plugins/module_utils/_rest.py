# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""REST shapes shared by the bake modules (galleries, Image Builder, identities). Pure, except the two
helpers at the end that send one ARM GET through a client the module already has.

Options are the snake_case of REST names; ``camel`` turns a pruned option dict into a request body
(``os_disk_size_gb`` -> ``osDiskSizeGB``), leaving the keys of user-owned maps (tags) alone.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional

from ._names import camel, to_camel  # noqa: F401  pylint: disable=unused-import

RESOURCE_GROUP_API_VERSION = "2021-04-01"
LOCATIONS_API_VERSION = "2022-12-01"


def tags_to_send(desired: Optional[Mapping[str, Any]], current: Optional[Mapping[str, Any]], purge: bool):
    """The whole tags map a PATCH must carry (ARM replaces it): desired merged over current unless purging."""
    if desired is None:
        return None
    if purge:
        return dict(desired)
    merged = dict(current or {})
    merged.update(desired)
    return merged


def tags_rule(purge: bool) -> str:
    """The _compare kind for tags: each tag set is compared; with purge, extra current tags differ too."""
    return "map_exact" if purge else "map"


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def iso_datetime(value: Any) -> Any:
    """A date-time in one spelling (UTC, ``YYYY-MM-DDTHH:MM:SSZ``), so equal instants compare equal.

    Accepts ``2027-12-31``, ``2027-12-31T00:00:00Z``, ``2027-12-31T01:00:00+01:00``, fractions of seconds;
    anything else is returned unchanged (and then compared as given).
    """
    if not isinstance(value, str) or not value.strip():
        return value
    text = value.strip()
    if _DATE_ONLY.match(text):
        text += "T00:00:00Z"
    text = re.sub(r"(\.\d+)", "", text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def join_paths(paths: Iterable[str]) -> str:
    return ", ".join(paths)


# ---------------------------------------------------------------------------------------------
# the two ARM reads that have no SDK client in requirements.txt (azure-mgmt-resource is not one):
# sent through the pipeline of a client the module already built.

def send(client, request):
    """Send a raw ARM request through an SDK client's pipeline (multi-API clients keep it in ``_client``)."""
    if hasattr(client, "send_request"):
        return client.send_request(request)
    pipeline = client._client  # pylint: disable=protected-access
    request.url = pipeline.format_url(request.url)
    return pipeline.send_request(request)


def resource_group_location(client, subscription_id: str, resource_group: str) -> str:
    """The region of a resource group (raises the SDK's ResourceNotFoundError when it does not exist)."""
    from azure.core.rest import HttpRequest  # pylint: disable=import-outside-toplevel

    response = send(client, HttpRequest(
        "GET", "/subscriptions/%s/resourcegroups/%s?api-version=%s" % (subscription_id, resource_group,
                                                                       RESOURCE_GROUP_API_VERSION)))
    raise_for_status(response)
    return response.json()["location"]


def subscription_locations(client, subscription_id: str) -> Optional[list]:
    """The subscription's locations [{name, display_name}] (ARM Subscriptions - List Locations), or None when
    the cloud does not answer that request (404 or 501) or the caller may not read it (403)."""
    from azure.core.rest import HttpRequest  # pylint: disable=import-outside-toplevel

    response = send(client, HttpRequest(
        "GET", "/subscriptions/%s/locations?api-version=%s" % (subscription_id, LOCATIONS_API_VERSION)))
    if response.status_code in (403, 404, 501):
        return None
    raise_for_status(response)
    return [{"name": item.get("name"), "display_name": item.get("displayName")}
            for item in response.json().get("value", []) if item.get("name")]


def raise_for_status(response) -> None:
    """Raise what the SDK raises for an ARM error (HttpResponseError with the ARM envelope, 404 as ResourceNotFoundError)."""
    if response.status_code < 400:
        return
    # pylint: disable=import-outside-toplevel
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.mgmt.core.exceptions import ARMErrorFormat

    error = ResourceNotFoundError if response.status_code == 404 else HttpResponseError
    raise error(response=response, error_format=ARMErrorFormat)
