# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: instances
short_description: Inventory of the instances of Azure virtual machine scale sets
version_added: 0.1.0
description:
  - A host for every instance of the listed scale sets (or of every scale set of the subscription), Uniform and
    Flexible alike, with its private IP, placement, model and image status, health and power state as host
    variables.
  - 'Reads a YAML configuration file whose name ends in C(.yml) or C(.yaml) and which holds
    C(plugin: fleetops.vmss.instances).'
  - Signs in the way the collection's modules do (options, then the E(AZURE_*) environment variables that AWX's
    Microsoft Azure Resource Manager credential sets, then a C(~/.azure/credentials) profile).
  - 'B(Cost), per scale set: one paged list of its instances with their instance views and one paged list of
    network interfaces (for the private IPs), so about two requests per 100 instances. Uniform NICs are listed
    per scale set; Flexible VMs'' NICs are listed once per resource group, however many Flexible scale sets it
    holds. Add one GET per scale set listed by name, one list per resource group listed without a name, or one
    list of the subscription''s scale sets when O(scale_sets) is empty. With O(cache), a cached inventory costs
    no request at all until the cache times out.'
  - Run C(ansible-inventory -v) to see how many requests a refresh took.
author:
  - FleetOps maintainers (@fleetops)
options:
  plugin:
    description: The name of this plugin; it marks the file as this plugin's configuration.
    type: str
    required: true
    choices: [fleetops.vmss.instances]
  scale_sets:
    description:
      - The scale sets whose instances become hosts. Leave it empty for every scale set of the subscription.
    type: list
    elements: dict
    default: []
    suboptions:
      resource_group:
        description: The resource group of the scale set.
        type: str
        required: true
      name:
        description: The scale set's name. If not set, every scale set of O(scale_sets[].resource_group).
        type: str
  hostname:
    description:
      - What names each host.
      - V(computer_name) is the guest's host name (C(osProfile.computerName)), V(name) the VM's name (C(web_3)
        for a Uniform instance, C(web_1a2b3c4d) for a Flexible one), V(private_ip) the primary private IP.
      - When an instance has no value for it (no private IP yet), its VM name stands in.
      - Two instances that would get the same name fail the inventory, naming both; pick another O(hostname).
    type: str
    choices: [computer_name, name, private_ip]
    default: computer_name
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - fleetops.vmss.azure
notes:
  - Every host also gets C(ansible_host) set to its private IP when it has one; O(compose) can set it otherwise.
  - Host variables are those of M(fleetops.vmss.scale_set_instance_info)'s C(instances) (C(instance_id), C(name),
    C(id), C(vm_id), C(computer_name), C(zone), C(update_domain), C(fault_domain), C(latest_model_applied),
    C(image), C(vm_size), C(priority), C(provisioning_state), C(power_state), C(health_state), C(protection),
    C(error)), plus C(private_ip), C(image_version), C(location), C(scale_set), C(scale_set_id),
    C(resource_group) and C(orchestration_mode) - except that the VM's C(name) is the host variable C(vm_name) and
    its C(tags) C(azure_tags) (C(name) and C(tags) are reserved names in ansible-core 2.19, which warns about them
    in every play).
  - O(compose), O(groups) and O(keyed_groups) expressions may still use C(name) and C(tags), the earlier names.
  - 'Azure RBAC: C(Microsoft.Compute/virtualMachineScaleSets/read),
    C(Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read) and
    C(Microsoft.Compute/virtualMachineScaleSets/networkInterfaces/read) (Uniform);
    C(Microsoft.Compute/virtualMachines/read) and C(Microsoft.Network/networkInterfaces/read) (Flexible);
    see the collection''s docs/permissions.md.'
  - Requires C(azure-mgmt-network) besides C(azure-mgmt-compute) and C(azure-identity) on the controller.
seealso:
  - module: fleetops.vmss.scale_set_instance_info
"""

EXAMPLES = r"""
# fleet.vmss.yml: every instance of two scale sets, grouped by zone, health and scale set
plugin: fleetops.vmss.instances
scale_sets:
  - resource_group: payments-prod
    name: payments-api
  - resource_group: payments-prod
    name: payments-worker
keyed_groups:
  - key: scale_set
    prefix: vmss
  - key: zone
    prefix: zone
    default_value: none
  - key: health_state | default('none', true) | lower
    prefix: health
groups:
  stale: not latest_model_applied
compose:
  ansible_user: "'azureuser'"
  image_tag: tags.image | default(image_version)

---
# all.vmss.yml: every scale set of the subscription, named by private IP, cached for five minutes
plugin: fleetops.vmss.instances
hostname: private_ip
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/fleetops-inventory
cache_timeout: 300
"""

import os

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.fleetops.vmss.plugins.module_utils import _instances as instances
from ansible_collections.fleetops.vmss.plugins.module_utils import _inventory as listing
from ansible_collections.fleetops.vmss.plugins.module_utils._auth import AuthError
from ansible_collections.fleetops.vmss.plugins.module_utils._client import MissingLibrary
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AUTH_ARGUMENT_SPEC, connect
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import arm_errors, ignore_not_found


# Host variables renamed from the instance's keys: ansible-core 2.19 reserves `name` and `tags` (playbook keywords)
# and warns in every play of a host that has them. Constructed expressions still see the earlier names.
RENAMED_VARIABLES = {"name": "vm_name", "tags": "azure_tags"}


class _RaiseOnFailure:
    """What _errors.arm_errors calls to fail: here, an AnsibleError carrying the same one-line message."""

    @staticmethod
    def fail_json(msg, **kwargs):  # pylint: disable=unused-argument
        raise AnsibleError(msg)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = "fleetops.vmss.instances"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith((".yml", ".yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path)
        self._read_config_data(path)

        # The standard inventory-cache dance: read the cache unless asked to refresh (cache=False,
        # --flush-cache), and write it when we had to ask Azure.
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        hosts = None
        if use_cache:
            try:
                hosts = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if hosts is None:
            hosts = self._read_azure()
        if update_cache:
            self._cache[cache_key] = hosts
        self._populate(hosts)

    # --- Azure -----------------------------------------------------------------------------

    def _read_azure(self):
        """Every instance of the configured scale sets as a host-variables dict (what the cache holds)."""
        factory = self._connect()
        compute, network = self._client(factory, "compute"), self._client(factory, "network")
        with arm_errors(_RaiseOnFailure, "list", "the scale sets"):
            scale_sets, missing = listing.scale_sets(compute, self.get_option("scale_sets"), ignore_not_found)
        for what in missing:
            self.display.warning("fleetops.vmss.instances: %s was not found; it adds no hosts." % what)

        hosts, ips_by_group = [], {}
        for scale_set in scale_sets:
            group, name = listing.split_id(scale_set.get("id"))
            what = "scale set %s/%s" % (group, name)
            with arm_errors(_RaiseOnFailure, "list the instances of", what):
                vms = list(instances.iter_instances(compute, group, name, scale_set))
            with arm_errors(_RaiseOnFailure, "list the network interfaces of", what):
                if instances.is_flexible(scale_set):  # the group's NICs: one list, shared by its Flexible sets
                    if group.lower() not in ips_by_group:
                        ips_by_group[group.lower()] = listing.private_ips(
                            listing.network_interfaces(network, scale_set))
                    ips = ips_by_group[group.lower()]
                else:
                    ips = listing.private_ips(listing.network_interfaces(network, scale_set))
            hosts.extend(listing.host_vars(vm, scale_set, ips) for vm in vms)
        self.display.v("fleetops.vmss.instances: %d hosts from %d scale sets in %d requests to Azure Resource Manager"
                       % (len(hosts), len(scale_sets), factory.requests.total))
        return hosts

    def _connect(self):
        params = {key: self.get_option(key) for key in AUTH_ARGUMENT_SPEC}
        try:
            return connect(params, os.environ)
        except AuthError as exc:
            raise AnsibleParserError("fleetops.vmss.instances: %s" % exc) from exc
        except ImportError as exc:
            raise AnsibleParserError("fleetops.vmss.instances requires azure-identity: %s" % exc) from exc

    @staticmethod
    def _client(factory, name):
        try:
            return factory.client(name)
        except MissingLibrary as exc:
            raise AnsibleParserError("fleetops.vmss.instances requires %s (pip install %s): %s"
                                     % (exc.requirement, exc.requirement, exc.error)) from exc

    # --- inventory -------------------------------------------------------------------------

    def _populate(self, hosts):
        hostname = self.get_option("hostname")
        named = []
        for variables in hosts:
            name, exact = listing.host_name(variables, hostname)
            if not exact:
                self.display.vv("fleetops.vmss.instances: %s has no %s yet; named by its VM name" % (name, hostname))
            named.append((name, variables))
        clashes = listing.duplicates(named)
        if clashes:
            name, ids = sorted(clashes.items())[0]
            raise AnsibleParserError("fleetops.vmss.instances: %d instances would be named %s (%s); set hostname to "
                                     "another of %s." % (len(ids), name, ", ".join(ids),
                                                         ", ".join(listing.HOSTNAMES)))

        strict = self.get_option("strict")
        for name, variables in named:
            expressions = dict(variables)
            if expressions.get("private_ip"):
                expressions["ansible_host"] = expressions["private_ip"]
            host_variables = {RENAMED_VARIABLES.get(key, key): value for key, value in expressions.items()}
            expressions.update(host_variables)   # both names in compose, groups and keyed_groups
            self.inventory.add_host(name)
            for key, value in host_variables.items():
                self.inventory.set_variable(name, key, value)
            self._set_composite_vars(self.get_option("compose"), expressions, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), expressions, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), expressions, name, strict=strict)
