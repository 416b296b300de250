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
  connect_via:
    description:
      - How Ansible reaches each instance, as connection variables of its host.
      - V(private_ip) sets C(ansible_host) to the instance's primary private IP (a controller in the virtual
        network, or one that routes to it).
      - V(nat) goes through the load balancer's inbound NAT rules that forward to O(nat_backend_port).
        C(ansible_host) is the rule's frontend public IP (the frontend's private IP on an internal load balancer)
        and C(ansible_port) the instance's frontend port (such as 50000 + instance id -> 22). Uniform scale sets
        use an inbound NAT pool (Azure's rule C(<pool>.<instance id>) per instance); Flexible ones an inbound NAT
        rule for a backend pool, whose port per instance Azure gives on request. The endpoint is also kept as
        C(nat_host) and C(nat_port). An instance with no such rule gets no C(ansible_host).
      - V(jump_host) sets C(ansible_host) to the private IP and C(ansible_ssh_common_args) to
        C(-o ProxyJump=<jump_host>), through a jump box in the same virtual network (O(jump_host)).
      - Changing it on a cached inventory needs a refresh (C(--flush-cache)) for V(nat).
    type: str
    choices: [private_ip, nat, jump_host]
    default: private_ip
  nat_backend_port:
    description: With O(connect_via=nat), the backend port of the inbound NAT rules to use (SSH's by default).
    type: int
    default: 22
  jump_host:
    description:
      - With O(connect_via=jump_host), the jump box, as C(ssh -J) takes it (C([user@]host[:port])).
      - 'It may name a variable instead, such as C("{{ bastion }}"): the template is kept and resolved when Ansible
        connects, from the host''s or its groups'' variables (group_vars).'
    type: str
  host_type:
    description:
      - V(instance) - a host per instance (everything above).
      - V(scale_set) - a host per scale set, for fleet rollouts (C(playbooks/fleet_rollout.yml)), named by the scale
        set's name (C(<resource group>/<name>) when two selected sets share a name, C(<subscription>/<resource
        group>/<name>) when those clash too). Its variables - C(scale_set) (the name), C(scale_set_id),
        C(resource_group), C(subscription_id), C(location), C(zones), C(scale_set_tags), C(vm_size), C(capacity),
        C(orchestration_mode), C(upgrade_mode),
        C(provisioning_state), C(image) (the model's image reference), C(image_version) (the version the model runs),
        C(instance_count), C(instance_image_versions) (instances per version they run), C(instances_not_on_latest_model)
        and C(health_summary) (instances per Application Health state, C(None) for those reporting none) - feed
        O(groups), O(keyed_groups) and O(compose), such as C(keyed_groups) on C(location), C(subscription_id) or
        C(scale_set_tags.service). O(hostname) does not apply.
      - 'B(Cost), per scale set: one paged list of its instances with their instance views (no network interfaces),
        besides one list of the scale sets per subscription (or the reads of O(scale_sets)).'
      - 'Azure RBAC: C(Microsoft.Compute/virtualMachineScaleSets/read) and
        C(Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read) (Uniform) or
        C(Microsoft.Compute/virtualMachines/read) (Flexible).'
    type: str
    choices: [instance, scale_set]
    default: instance
  subscriptions:
    description:
      - With O(host_type=scale_set), the subscriptions to list scale sets from, each read with the same credentials
        (O(scale_sets), when set, applies in each). If not set, the subscription the plugin signs in to.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - fleetops.vmss.azure
notes:
  - Every host also gets C(ansible_host) (and C(ansible_port), C(ansible_ssh_common_args)) as O(connect_via) says
    when the instance has an address that way; O(compose) can set them otherwise.
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
    with O(connect_via=nat) also C(Microsoft.Network/loadBalancers/read), C(Microsoft.Network/publicIPAddresses/read)
    and (Flexible) C(Microsoft.Network/loadBalancers/backendAddressPools/queryInboundNatRulePortMapping/action);
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
# nat.vmss.yml: reach each instance through the load balancer's inbound NAT rules (public IP, 50000 + n -> 22)
plugin: fleetops.vmss.instances
scale_sets:
  - resource_group: payments-prod
    name: payments-api
connect_via: nat

---
# jump.vmss.yml: the private IPs through a jump box named by the group variable "bastion" (group_vars/all.yml)
plugin: fleetops.vmss.instances
scale_sets:
  - resource_group: payments-prod
connect_via: jump_host
jump_host: "{{ bastion }}"

---
# all.vmss.yml: every scale set of the subscription, named by private IP, cached for five minutes
plugin: fleetops.vmss.instances
hostname: private_ip
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/fleetops-inventory
cache_timeout: 300

---
# fleet.vmss.yml: every scale set of two subscriptions as a host (for playbooks/fleet_rollout.yml), grouped by
# region, subscription and service
plugin: fleetops.vmss.instances
host_type: scale_set
subscriptions:
  - 00000000-0000-0000-0000-000000000001
  - 00000000-0000-0000-0000-000000000002
keyed_groups:
  - key: location
    prefix: region
  - key: subscription_id
    prefix: subscription
  - key: scale_set_tags.service | default('none')
    prefix: service
groups:
  degraded: health_summary.Unhealthy | default(0) > 0
"""

import os

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

try:  # ansible-core 2.19+: inventory values are not templates unless trusted
    from ansible.template import trust_as_template
except ImportError:  # older ansible-core templates every variable
    trust_as_template = None

from ansible_collections.fleetops.vmss.plugins.module_utils import _fleet_inventory as fleet
from ansible_collections.fleetops.vmss.plugins.module_utils import _instances as instances
from ansible_collections.fleetops.vmss.plugins.module_utils import _inventory as listing
from ansible_collections.fleetops.vmss.plugins.module_utils._auth import AuthError
from ansible_collections.fleetops.vmss.plugins.module_utils._client import MissingLibrary
from ansible_collections.fleetops.vmss.plugins.module_utils._common import AUTH_ARGUMENT_SPEC, connect
from ansible_collections.fleetops.vmss.plugins.module_utils._errors import AzureFailure, arm_errors, ignore_not_found


# Host variables renamed from the instance's keys: ansible-core 2.19 reserves `name` and `tags` (playbook keywords)
# and warns in every play of a host that has them. Constructed expressions still see the earlier names.
RENAMED_VARIABLES = {"name": "vm_name", "tags": "azure_tags"}


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = "fleetops.vmss.instances"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith((".yml", ".yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path)
        self._read_config_data(path)
        if self.get_option("connect_via") == "jump_host" and not self.get_option("jump_host"):
            raise AnsibleParserError("fleetops.vmss.instances: connect_via=jump_host needs jump_host "
                                     "([user@]host[:port], or a template such as \"{{ bastion }}\").")

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
        scale_set_hosts = self.get_option("host_type") == "scale_set"
        if hosts is None:
            try:
                hosts = self._read_scale_sets() if scale_set_hosts else self._read_azure()
            except AzureFailure as exc:  # the same one-line message a module fails with
                raise AnsibleError(exc.msg) from None
        if update_cache:
            self._cache[cache_key] = hosts
        if scale_set_hosts:
            self._populate_scale_sets(hosts)
        else:
            self._populate(hosts)

    # --- Azure -----------------------------------------------------------------------------

    def _read_azure(self):
        """Every instance of the configured scale sets as a host-variables dict (what the cache holds)."""
        factory = self._connect()
        compute, network = self._client(factory, "compute"), self._client(factory, "network")
        with arm_errors("list", "the scale sets"):
            scale_sets, missing = listing.scale_sets(compute, self.get_option("scale_sets"), ignore_not_found)
        for what in missing:
            self.display.warning("fleetops.vmss.instances: %s was not found; it adds no hosts." % what)

        hosts, nics_by_group = [], {}
        nat = self._nat_endpoints(network) if self.get_option("connect_via") == "nat" else None
        for scale_set in scale_sets:
            group, name = listing.split_id(scale_set.get("id"))
            what = "scale set %s/%s" % (group, name)
            with arm_errors("list the instances of", what):
                vms = list(instances.iter_instances(compute, group, name, scale_set))
            with arm_errors("list the network interfaces of", what):
                if instances.is_flexible(scale_set):  # the group's NICs: one list, shared by its Flexible sets
                    if group.lower() not in nics_by_group:
                        nics_by_group[group.lower()] = list(listing.network_interfaces(network, scale_set))
                    nics = nics_by_group[group.lower()]
                else:
                    nics = list(listing.network_interfaces(network, scale_set))
            ips = listing.private_ips(nics)
            with arm_errors("read the inbound NAT rules of", what):
                endpoints = nat.of_nics(nics) if nat else None
            hosts.extend(listing.host_vars(vm, scale_set, ips, endpoints) for vm in vms)
        self.display.v("fleetops.vmss.instances: %d hosts from %d scale sets in %d requests to Azure Resource Manager"
                       % (len(hosts), len(scale_sets), factory.requests.total))
        return hosts

    def _nat_endpoints(self, network):
        """The NAT endpoint resolver, reading load balancers, public IPs and port mappings through ``network``."""
        def load_balancer(rid):
            group, name = listing.split_id(rid)
            found = ignore_not_found(lambda: network.load_balancers.get(group, name))
            return found.as_dict() if found is not None else None

        def public_ip(rid):
            group, name = listing.split_id(rid)
            found = ignore_not_found(lambda: network.public_ip_addresses.get(group, name))
            return found.as_dict() if found is not None else None

        def port_mappings(lb_id, pool, ipc_id):
            group, name = listing.split_id(lb_id)
            poller = network.load_balancers.begin_list_inbound_nat_rule_port_mappings(
                group, name, pool, {"ipConfiguration": {"id": ipc_id}})
            return poller.result().as_dict().get("inboundNatRulePortMappings") or []

        return listing.NatEndpoints(load_balancer, public_ip, port_mappings, self.get_option("nat_backend_port"))

    def _read_scale_sets(self):
        """Every configured scale set as one host-variables dict (what the cache holds)."""
        factory = self._connect()
        self._client(factory, "compute")  # a missing SDK fails here, with its pip requirement

        hosts, missing = fleet.read(factory, self.get_option("subscriptions"), self.get_option("scale_sets"),
                                    ignore_not_found, arm_errors)
        for what in missing:
            self.display.warning("fleetops.vmss.instances: %s was not found; it adds no hosts." % what)
        self.display.v("fleetops.vmss.instances: %d scale sets in %d requests to Azure Resource Manager"
                       % (len(hosts), factory.requests.total))
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
        connect_via, jump_host = self.get_option("connect_via"), self.get_option("jump_host")
        for name, variables in named:
            expressions = dict(variables)
            expressions.update(listing.connection_vars(expressions, connect_via, jump_host))
            args = expressions.get("ansible_ssh_common_args")
            if args and "{{" in args and trust_as_template is not None:
                # a jump host named by a variable: resolved when Ansible connects, from host / group vars
                expressions["ansible_ssh_common_args"] = trust_as_template(args)
            host_variables = {RENAMED_VARIABLES.get(key, key): value for key, value in expressions.items()}
            expressions.update(host_variables)   # both names in compose, groups and keyed_groups
            self._add_host(name, host_variables, expressions, strict)

    def _populate_scale_sets(self, hosts):
        """Scale-set hosts (host_type: scale_set), with compose, groups and keyed_groups as for instances."""
        strict = self.get_option("strict")
        for name, variables in fleet.host_names(hosts):
            self._add_host(name, variables, variables, strict)

    def _add_host(self, name, variables, expressions, strict):
        """One host with its variables, in the groups that compose, groups and keyed_groups give from ``expressions``."""
        self.inventory.add_host(name)
        for key, value in variables.items():
            self.inventory.set_variable(name, key, value)
        self._set_composite_vars(self.get_option("compose"), expressions, name, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), expressions, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), expressions, name, strict=strict)
