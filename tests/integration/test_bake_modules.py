# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bake modules against the emulator: the playbook targets gallery, gallery_image_version and image_template
(check mode, create, idempotence with no write in the traffic log, diff, update, refusals, failures, delete)."""

from __future__ import annotations

from conftest import last_seq, put_resource_group, require_success

RG = "images-it"
LOCATION = "westeurope"


def definition_id(azure, image="web"):
    return ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/golden/images/%s"
            % (azure.subscription_id, RG, image))


def seed_gallery(azure, images=(("web", "Linux"),)):
    """Resource group, gallery golden and image definitions, written through the SDK."""
    put_resource_group(azure, RG, LOCATION)
    compute = azure.client("compute")
    compute.galleries.begin_create_or_update(RG, "golden", {"location": LOCATION}).result()
    for image, os_type in images:
        compute.gallery_images.begin_create_or_update(RG, "golden", image, {
            "location": LOCATION, "properties": {"osType": os_type, "osState": "Generalized",
                                                 "identifier": {"publisher": "fleetops", "offer": image, "sku": "1"}}}
        ).result()


def seed_version(azure, image, name):
    """A version replicated to westeurope, made from a managed image (the emulator does not model those)."""
    source = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/images/base" % (azure.subscription_id, RG)
    azure.client("compute").gallery_image_versions.begin_create_or_update(RG, "golden", image, name, {
        "location": LOCATION, "properties": {"storageProfile": {"source": {"id": source}},
                                             "publishingProfile": {"targetRegions": [{"name": LOCATION}]}}}).result()
    return "%s/versions/%s" % (definition_id(azure, image), name)


def test_gallery_target(emulator, ansible, control):
    require_success(ansible.playbook("gallery", {"rg": RG, "traffic_start": last_seq(control)}, forked_modules=True))


def test_gallery_image_version_target(emulator, azure, ansible, control):
    seed_gallery(azure, images=(("web", "Linux"), ("win", "Windows")))
    seed_version(azure, "web", "0.9.0")
    windows = seed_version(azure, "win", "1.0.0")
    require_success(ansible.playbook("gallery_image_version", {
        "rg": RG, "definition_id": definition_id(azure), "windows_version_id": windows,
        "traffic_start": last_seq(control)}, forked_modules=True))


def test_image_template_target(emulator, azure, ansible, control):
    seed_gallery(azure)
    require_success(ansible.playbook("image_template", {
        "rg": RG, "subscription": azure.subscription_id, "definition_id": definition_id(azure),
        "traffic_start": last_seq(control)}, forked_modules=True))
