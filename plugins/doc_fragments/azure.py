# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Authentication and connection options shared by every fleetops.vmss module.
    # Keep in sync with AUTH_ARGUMENT_SPEC / WAIT_ARGUMENT_SPEC in plugins/module_utils/_common.py.

    DOCUMENTATION = r"""
options:
  subscription_id:
    description:
      - The Azure subscription to work in.
      - If not set, the environment variable E(AZURE_SUBSCRIPTION_ID), then C(subscription_id) of the
        O(profile) in C(~/.azure/credentials); with O(auth_source=cli), the Azure CLI's default subscription.
    type: str
  client_id:
    description:
      - The application (client) ID of a service principal, a user-assigned managed identity
        (O(auth_source=msi)) or a workload identity.
      - If not set, E(AZURE_CLIENT_ID), then C(client_id) of the O(profile).
    type: str
  secret:
    description:
      - The service principal's client secret.
      - If not set, E(AZURE_SECRET) (azure.azcollection, AWX), then E(AZURE_CLIENT_SECRET) (azure-identity),
        then C(secret) of the O(profile).
    type: str
  tenant:
    description:
      - The Microsoft Entra tenant (directory) ID.
      - If not set, E(AZURE_TENANT) (azure.azcollection, AWX), then E(AZURE_TENANT_ID) (azure-identity),
        then C(tenant) of the O(profile).
    type: str
  auth_source:
    description:
      - Where credentials come from. If not set, E(AZURE_AUTH_SOURCE), else V(auto).
      - V(auto) layers, setting by setting, module options over environment variables over the
        O(profile) in C(~/.azure/credentials); it signs in with a client secret, or with a federated
        token when E(AZURE_FEDERATED_TOKEN_FILE) is set and no secret is.
      - V(env) reads options and environment variables only; V(credential_file) reads options and the
        O(profile) only.
      - V(cli) uses the Azure CLI's signed-in account (C(az login)).
      - V(msi) uses a managed identity (system-assigned, or user-assigned when O(client_id) is set).
      - V(workload_identity) uses a federated token from E(AZURE_FEDERATED_TOKEN_FILE) with O(client_id)
        and O(tenant), as on AKS workload identity or GitHub OIDC.
      - Missing credentials fail before any call to Azure, naming what to set.
    type: str
    choices: [auto, env, credential_file, cli, msi, workload_identity]
  profile:
    description:
      - The section of C(~/.azure/credentials) (an INI file, as azure.azcollection reads it) to take
        settings from. If not set, E(AZURE_PROFILE), else C(default) when that section exists.
    type: str
  cloud_environment:
    description:
      - The Azure cloud. One of V(AzureCloud), V(AzureUSGovernment) or V(AzureChinaCloud), or the URL
        of a cloud metadata endpoint such as C(https://management.example.com/metadata/endpoints?api-version=2022-09-01)
        (Azure Stack Hub, sovereign and private clouds), fetched over HTTPS with O(ca_bundle).
      - The resource manager endpoint, login endpoint and token audience are taken from the metadata.
      - If not set, E(AZURE_CLOUD_ENVIRONMENT) (set by AWX's Microsoft Azure Resource Manager credential),
        then C(cloud_environment) of the O(profile), else V(AzureCloud).
      - E(AZURE_AUTHORITY_HOST), when set, replaces the cloud's login endpoint.
    type: str
  cert_validation_mode:
    description:
      - Whether to validate TLS certificates of Azure endpoints. V(ignore) is for lab endpoints only.
      - If not set, E(AZURE_CERT_VALIDATION_MODE), then C(cert_validation_mode) of the O(profile),
        else V(validate).
    type: str
    choices: [validate, ignore]
  ca_bundle:
    description:
      - A PEM file of CA certificates to trust for Azure endpoints (an inspecting proxy, a private cloud).
      - If not set, E(REQUESTS_CA_BUNDLE), then E(SSL_CERT_FILE), then C(ca_bundle) of the O(profile),
        else the CA certificates that the Python C(requests) library trusts.
    type: path
requirements:
  - python >= 3.9
  - azure-identity >= 1.27.0
  - azure-core >= 1.41.0
  - the C(azure-mgmt-*) package of the service the module manages (see the collection's requirements.txt)
notes:
  - Credentials and cloud are resolved where the module runs, usually the controller (C(localhost)).
  - AWX and Automation Platform's Microsoft Azure Resource Manager credential works as it is, since it sets
    E(AZURE_SUBSCRIPTION_ID), E(AZURE_CLIENT_ID), E(AZURE_SECRET), E(AZURE_TENANT) and E(AZURE_CLOUD_ENVIRONMENT).
  - Requests are retried on throttling (429), timeouts (408), server errors (500, 502, 503, 504) and connection errors
    (refused, reset, dropped), up to 7 times in a row whatever the mix, so 8 attempts in all. Between two
    attempts the module waits for C(Retry-After) (or C(retry-after-ms)) when Azure sends one, else backs off
    0, 1.6, 3.2, 6.4, 12.8, 20 and 20 seconds (64 s in all, each wait at most 20 s), so an outage of about a minute
    is ridden out, a longer one fails the task with Azure's error code. The fetch of a custom cloud's metadata
    (O(cloud_environment) given as a URL) is retried the same way.
  - POST and PATCH requests, which are not idempotent, are retried on a 500, 503 or 504 answer and on throttling
    that carries C(Retry-After) (Azure's does), not on a connection error, since Azure may have acted on them.
  - Every option is checked before the first request, so that a bad value never changes anything - numbers
    finite and in range (timeouts and sleeps above 0, percentages from 0 to 100, counts 0 or more), names and
    tags by Azure's naming rules, image references by their shapes. A YAML boolean where text goes (an
    unquoted C(no) as a name, which YAML reads as V(false)) is refused - quote it. Whether a VM size exists in
    the region is left to Azure, which refuses an unknown one without changing anything.
"""

    WAIT = r"""
options:
  wait:
    description:
      - Wait for Azure to finish the change before returning.
      - With V(false), the module returns once Azure has accepted the request.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait, in total, when O(wait=true). The module fails once it has passed.
      - More than 0.
    type: int
    default: 1800
  wait_sleep:
    description:
      - Seconds between two status checks, when Azure does not say when to ask again (C(Retry-After)).
      - More than 0.
    type: float
    default: 10.0
"""

    # Modules that hold a scale set's lease while they work (rollout, blue_green, rolling_upgrade).
    # Keep in sync with LEASE_ARGUMENT_SPEC in plugins/module_utils/_common.py.
    LEASE = r"""
options:
  force_lease:
    description:
      - Take the scale set's lease even when another run holds it and it has not expired.
      - The module holds a lease on the scale set it changes while it works - the tag C(fleetops.lease)
        (C(owner=<host>:<controller pid>:<run id>;pid=<module pid>;op=<operation>;expires=<UTC time>)), written
        under C(If-Match) and renewed every few wait cycles (it expires at least five minutes after its last renewal).
        A second rollout, blue/green swap or rolling upgrade start or cancel on a leased scale set fails before any
        write, naming the holder and the expiry. (A cancel only checks the lease - a PATCH of a scale set in
        C(Rolling) mode would wait behind the upgrade it is meant to stop.)
      - Without this option the lease is taken over only when it has expired, cannot be read, or its module process
        is gone on this same host (the result's C(lease.taken_over) says so). A run on this host whose controller
        was killed stops at its next wait; a re-run meanwhile waits for it.
      - Set it only when you know the holder is gone (its host lost); a holder still running stops at its next
        renewal, but may have sent one more write by then.
      - In check mode nothing is written; C(lease.free) says whether the lease is free.
    type: bool
    default: false
  keep_lease:
    description:
      - Another call of this run follows (the C(fleetops.vmss.rollout) role calls M(fleetops.vmss.rollout) once per
        batch with O(fleetops.vmss.rollout#module:max_batches), and M(fleetops.vmss.blue_green) V(staged) then V(live)) - keep the lease at exit
        instead of releasing it, so that no other run slips in before the next call, when the call leaves work to
        that call - M(fleetops.vmss.rollout) with status V(in_progress), M(fleetops.vmss.blue_green) with V(succeeded)
        or V(nothing_to_do). A kept lease says C(pid=0) (no module holds it, the run does); with O(lease_run) the
        call writes it so from the start, with C(call=<module pid>), and leaves it at exit without a write while a
        quarter or more of its time is left (else with a fresh expiry); the result says C(lease.kept=true).
        Any other outcome, and a failure, releases it.
      - The next call takes the kept lease as its own when it has the same O(lease_run) - as it is, without a write,
        while a sixth or more of its time is left (a batch's upgrade is not held back by a tags update - it is renewed
        right after that upgrade), else rewritten - and keeps it again at exit the same way; every other run is
        refused until the lease expires (at least five minutes later) or takes it over with O(force_lease).
    type: bool
    default: false
  lease_run:
    description:
      - The run id this call's lease carries (C(owner=<host>:<controller pid>:<run id>)) - the same for every call of
        one run, a new one for each run (the role draws one per role run). A lease whose run id is this one is
        this run's own and is taken without O(force_lease).
      - 1 to 40 letters, digits, V(_), V(.) or V(-). Default - a new random id for each call.
    type: str
  lease_controller_pid:
    description:
      - The process id of the C(ansible-playbook) run this call belongs to, on the host the module runs on (the
        roles set it). Needed when the module runs under C(async), which detaches it from its controller - without
        it the module cannot tell that its controller was killed, and a lease it kept (O(keep_lease)) would then
        block a re-run until it expires.
      - With it, the module stops at its next wait when that process is gone, and a kept lease whose controller is
        gone on this host is taken over by the next run - at once, or once the call that wrote it has stopped.
      - Default - the module finds its controller among its parent processes.
    type: int
"""
