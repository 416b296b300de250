"""Request bodies checked against the official Azure OpenAPI specs.

The specs are required: CI always has ../shared/azure-specs, so their absence fails these tests
instead of skipping them.
"""
import copy
import json
import os
import threading
import time

import pytest

from emulator import specs
from emulator.arm import ArmError

INDEX = specs.SpecIndex.load()

VMSS_PUT = "VirtualMachineScaleSets_CreateOrUpdate"
IMAGE_TEMPLATE_PUT = "VirtualMachineImageTemplates_CreateOrUpdate"
AUTOSCALE_PUT = "AutoscaleSettings_CreateOrUpdate"


@pytest.fixture(scope="module")
def index():
    assert INDEX.available, INDEX.reason
    return INDEX


def example_body(index, operation_id, title=None):
    """A deep copy of an example request body (the first one unless a title is given)."""
    examples = index.examples(operation_id)
    chosen = next(e for e in examples if title in (None, e.title))
    return copy.deepcopy(chosen.body)


def rejection(index, operation_id, body):
    with pytest.raises(ArmError) as caught:
        index.validate_body(operation_id, body)
    error = caught.value
    assert (error.status, error.code) == (400, "InvalidParameter")
    return error


# --- loading -------------------------------------------------------------------------------------

def test_specs_are_present():
    assert INDEX.available, f"{INDEX.reason} (set FLEETOPS_AZURE_SPECS)"
    assert INDEX.reason is None


def test_operations_table(index):
    ops = {(op.operation_id, op.spec_file.rsplit("/", 1)[1]): op for op in index.operations()}

    vmss = ops[(VMSS_PUT, "virtualMachineScaleSet.json")]
    assert vmss.method == "PUT"
    assert vmss.path_template == ("/subscriptions/{subscriptionId}/resourceGroups/"
                                  "{resourceGroupName}/providers/Microsoft.Compute/"
                                  "virtualMachineScaleSets/{vmScaleSetName}")
    assert (vmss.api_version, vmss.long_running, vmss.lro_options) == ("2024-07-01", True, {})
    assert os.path.isfile(os.path.join(index.root, vmss.spec_file))

    reapply = ops[("VirtualMachineScaleSets_Reapply", "virtualMachineScaleSet.json")]
    assert reapply.lro_options == {"final-state-via": "location"}
    assert ops[("Galleries_CreateOrUpdate", "gallery.json")].api_version == "2024-03-03"
    assert ops[(IMAGE_TEMPLATE_PUT, "imagebuilder.json")].api_version == "2024-02-01"
    autoscale = ops[(AUTOSCALE_PUT, "autoscale_API.json")]
    assert (autoscale.api_version, autoscale.long_running) == ("2022-10-01", False)
    assert ops[("VirtualMachines_Get", "virtualMachine.json")].method == "GET"
    assert ops[("VirtualMachineSizes_List", "computeRPCommon.json")].method == "GET"
    assert len(index.operations()) == len(ops)  # (operationId, file) is unique


def test_missing_specs_leave_an_inert_index(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEETOPS_AZURE_SPECS", str(tmp_path / "nowhere"))

    absent = specs.SpecIndex.load()

    assert not absent.available
    assert str(tmp_path / "nowhere") in absent.reason
    assert absent.operations() == [] and absent.examples(VMSS_PUT) == []
    absent.validate_body(VMSS_PUT, {"sku": {"capacity": "many"}})


def test_environment_variable_names_the_root(monkeypatch):
    monkeypatch.setenv("FLEETOPS_AZURE_SPECS", INDEX.root)

    assert specs.default_spec_root() == INDEX.root
    assert specs.SpecIndex.load().available


# --- every official example is accepted ----------------------------------------------------------

def test_examples_are_those_of_the_manifest(index):
    with open(os.path.join(index.root, "MANIFEST.json")) as f:
        manifest = json.load(f)
    # Only the specs the emulator loads (the manifest may list more).
    served = [spec for path, spec in manifest["specs"].items() if path in specs.SPEC_FILES]
    for spec in served:
        for operation_id, entry in spec["operations"].items():
            found = {e.title: e.file for e in index.examples(operation_id)}
            assert found == entry["examples"], operation_id


def test_every_example_request_body_validates_clean(index):
    checked, failures = 0, []
    for operation_id in sorted({op.operation_id for op in index.operations()}):
        for example in index.examples(operation_id):
            checked += 1
            try:
                index.validate_body(operation_id, example.body)
            except ArmError as error:
                failures.append(f"{operation_id} / {example.title}: {error.message}")
    assert failures == []
    assert checked == 167  # every example file listed in MANIFEST.json (160 + 7 of Azure Monitor metrics)


# --- injected errors -----------------------------------------------------------------------------

def test_closed_enum_mismatch(index):
    body = example_body(index, VMSS_PUT)
    body["properties"]["upgradePolicy"] = {"mode": "Sometimes"}

    error = rejection(index, VMSS_PUT, body)

    assert error.target == "properties.upgradePolicy.mode"
    assert error.message == ("The value of parameter properties.upgradePolicy.mode is invalid. "
                             "Allowed values: Automatic, Manual, Rolling.")


def test_closed_enums_ignore_case_and_open_enums_take_any_string(index):
    body = example_body(index, VMSS_PUT)
    body["properties"]["upgradePolicy"] = {"mode": "rolling"}
    os_disk = body["properties"]["virtualMachineProfile"]["storageProfile"]["osDisk"]
    os_disk["createOption"] = "SomethingNew"  # x-ms-enum modelAsString: true

    index.validate_body(VMSS_PUT, body)


def test_string_for_integer(index):
    body = example_body(index, VMSS_PUT)
    body["sku"]["capacity"] = "3"

    error = rejection(index, VMSS_PUT, body)

    assert error.target == "sku.capacity"
    assert "Expected a value of type integer but got string." in error.message


@pytest.mark.parametrize("value,got", [(True, "boolean"), (2.5, "number")])
def test_other_non_integers(index, value, got):
    body = example_body(index, VMSS_PUT)
    body["properties"]["upgradePolicy"] = {"mode": "Rolling", "rollingUpgradePolicy": {
        "maxBatchInstancePercent": 20, "pauseTimeBetweenBatches": "PT0S",
        "maxUnhealthyInstancePercent": value}}

    error = rejection(index, VMSS_PUT, body)

    assert error.target == ("properties.upgradePolicy.rollingUpgradePolicy."
                            "maxUnhealthyInstancePercent")
    assert f"but got {got}." in error.message


def test_int32_range(index):
    body = example_body(index, VMSS_PUT)
    body["properties"]["platformFaultDomainCount"] = 2 ** 31
    assert rejection(index, VMSS_PUT, body).target == "properties.platformFaultDomainCount"

    body = example_body(index, VMSS_PUT)
    body["sku"]["capacity"] = 2 ** 40  # int64
    index.validate_body(VMSS_PUT, body)


def test_missing_required_property(index):
    body = example_body(index, VMSS_PUT)
    del body["location"]

    error = rejection(index, VMSS_PUT, body)

    assert error.target == "location"
    assert error.message == "Required parameter 'location' is missing (null)."


def test_missing_required_property_inside_a_list(index):
    body = example_body(index, VMSS_PUT)
    profile = body["properties"]["virtualMachineProfile"]
    del profile["networkProfile"]["networkInterfaceConfigurations"][0]["name"]

    error = rejection(index, VMSS_PUT, body)

    assert error.target == ("properties.virtualMachineProfile.networkProfile."
                            "networkInterfaceConfigurations[0].name")


def test_required_property_set_to_null_is_missing(index):
    body = example_body(index, VMSS_PUT)
    body["location"] = None

    assert rejection(index, VMSS_PUT, body).target == "location"


def test_below_minimum(index):
    body = example_body(index, VMSS_PUT)
    body["properties"]["upgradePolicy"] = {"mode": "Rolling",
                                           "rollingUpgradePolicy": {"maxBatchInstancePercent": 1}}

    error = rejection(index, VMSS_PUT, body)

    assert error.target == "properties.upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent"
    assert error.message.endswith("The value 1 is less than the minimum 5.")


def test_above_maximum(index):
    body = example_body(index, IMAGE_TEMPLATE_PUT)
    body["properties"]["buildTimeoutInMinutes"] = 961

    error = rejection(index, IMAGE_TEMPLATE_PUT, body)

    assert error.target == "properties.buildTimeoutInMinutes"
    assert error.message.endswith("The value 961 is greater than the maximum 960.")


def test_pattern(index):
    body = example_body(index, IMAGE_TEMPLATE_PUT)
    body["properties"]["distribute"][0]["runOutputName"] = "not allowed!"

    error = rejection(index, IMAGE_TEMPLATE_PUT, body)

    assert error.target == "properties.distribute[0].runOutputName"
    assert "must match the pattern" in error.message


def test_max_items(index):
    body = example_body(index, AUTOSCALE_PUT)
    body["properties"]["profiles"] = body["properties"]["profiles"] * 21

    error = rejection(index, AUTOSCALE_PUT, body)

    assert error.target == "properties.profiles"
    assert error.message.endswith("The list must have at most 20 items.")


def test_number_and_nested_enum_in_autoscale_rules(index):
    body = example_body(index, AUTOSCALE_PUT)
    trigger = body["properties"]["profiles"][0]["rules"][0]["metricTrigger"]
    trigger["threshold"] = 10  # an integer is a number
    index.validate_body(AUTOSCALE_PUT, body)
    trigger["operator"] = "Above"

    error = rejection(index, AUTOSCALE_PUT, body)

    assert error.target == "properties.profiles[0].rules[0].metricTrigger.operator"


def test_typed_additional_properties(index):
    body = example_body(index, VMSS_PUT)
    body["tags"] = {"env": "prod", "owner": 7}

    error = rejection(index, VMSS_PUT, body)

    assert error.target == "tags.owner"
    assert "Expected a value of type string but got integer." in error.message


def test_wrong_container_types(index):
    body = example_body(index, VMSS_PUT)
    body["zones"] = "1"
    assert rejection(index, VMSS_PUT, body).target == "zones"

    body = example_body(index, VMSS_PUT)
    body["properties"] = []
    assert rejection(index, VMSS_PUT, body).target == "properties"

    assert rejection(index, VMSS_PUT, ["not", "an", "object"]).target == "parameters"


def test_discriminated_subtypes(index):
    body = example_body(index, IMAGE_TEMPLATE_PUT)
    body["properties"]["customize"][0]["type"] = "Bogus"
    error = rejection(index, IMAGE_TEMPLATE_PUT, body)
    assert error.target == "properties.customize[0].type"
    assert "Allowed values: Shell, WindowsRestart, WindowsUpdate, PowerShell, File." in \
        error.message

    body = example_body(index, IMAGE_TEMPLATE_PUT)
    assert body["properties"]["source"]["type"] == "ManagedImage"
    del body["properties"]["source"]["imageId"]  # required by the ManagedImage subtype only
    assert rejection(index, IMAGE_TEMPLATE_PUT, body).target == "properties.source.imageId"

    body = example_body(index, IMAGE_TEMPLATE_PUT)
    del body["properties"]["customize"][0]["type"]  # required by the base type
    assert rejection(index, IMAGE_TEMPLATE_PUT, body).target == "properties.customize[0].type"


def test_missing_required_body(index):
    error = rejection(index, VMSS_PUT, None)

    assert error.target == "parameters"
    assert error.message == "Required parameter 'parameters' is missing (null)."


def test_operations_without_a_body_or_outside_the_specs_accept_anything(index):
    index.validate_body("VirtualMachineScaleSets_Get", {"anything": 1})
    index.validate_body("ResourceGroups_CreateOrUpdate", {"location": 5})
    index.validate_body("VirtualMachineScaleSets_Restart", None)  # optional body


# --- what is not rejected ------------------------------------------------------------------------

def test_read_only_properties_are_ignored_whatever_their_value(index):
    body = example_body(index, VMSS_PUT)
    body.update({"id": 1, "name": ["x"], "type": False, "etag": 5})
    body["properties"].update({"provisioningState": 123, "uniqueId": {}, "timeCreated": 7})

    index.validate_body(VMSS_PUT, body)


def test_a_get_response_can_be_put_back(index):
    """Clients read a scale set, change one thing and PUT the whole document back."""
    for example in index.examples("VirtualMachineScaleSets_Get"):
        with open(os.path.join(index.root, example.file)) as f:
            document = json.load(f)["responses"]["200"]["body"]
        index.validate_body(VMSS_PUT, document)


def test_body_serialized_by_azure_mgmt_compute(index):
    """What the collection sends: an SDK model for api-version 2026-04-01, in wire form."""
    from azure.mgmt.compute import models

    subnet = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/"
              "vnet/subnets/default")
    scale_set = models.VirtualMachineScaleSet(
        location="westeurope", sku=models.Sku(name="Standard_D2s_v3", tier="Standard",
                                              capacity=3),
        zones=["1", "2"], tags={"fleet": "web"},
        properties=models.VirtualMachineScaleSetProperties(
            orchestration_mode="Uniform", overprovision=False,
            upgrade_policy=models.UpgradePolicy(
                mode="Rolling", rolling_upgrade_policy=models.RollingUpgradePolicy(
                    max_batch_instance_percent=20, max_unhealthy_instance_percent=20,
                    max_unhealthy_upgraded_instance_percent=20,
                    pause_time_between_batches="PT0S")),
            automatic_repairs_policy=models.AutomaticRepairsPolicy(enabled=True,
                                                                   grace_period="PT10M"),
            virtual_machine_profile=models.VirtualMachineScaleSetVMProfile(
                os_profile=models.VirtualMachineScaleSetOSProfile(
                    computer_name_prefix="web", admin_username="azureuser",
                    linux_configuration=models.LinuxConfiguration(
                        disable_password_authentication=True,
                        ssh=models.SshConfiguration(public_keys=[models.SshPublicKey(
                            path="/home/azureuser/.ssh/authorized_keys",
                            key_data="ssh-ed25519 AAAA")]))),
                storage_profile=models.VirtualMachineScaleSetStorageProfile(
                    image_reference=models.ImageReference(
                        publisher="Canonical", offer="ubuntu-24_04-lts", sku="server",
                        version="latest"),
                    os_disk=models.VirtualMachineScaleSetOSDisk(
                        create_option="FromImage", caching="ReadWrite",
                        managed_disk=models.VirtualMachineScaleSetManagedDiskParameters(
                            storage_account_type="Premium_LRS"))),
                network_profile=models.VirtualMachineScaleSetNetworkProfile(
                    network_interface_configurations=[
                        models.VirtualMachineScaleSetNetworkConfiguration(
                            name="nic", properties=models
                            .VirtualMachineScaleSetNetworkConfigurationProperties(
                                primary=True, ip_configurations=[
                                    models.VirtualMachineScaleSetIPConfiguration(
                                        name="ip", properties=models
                                        .VirtualMachineScaleSetIPConfigurationProperties(
                                            subnet=models.ApiEntityReference(id=subnet)))]))]),
                extension_profile=models.VirtualMachineScaleSetExtensionProfile(extensions=[
                    models.VirtualMachineScaleSetExtension(
                        name="health", properties=models.VirtualMachineScaleSetExtensionProperties(
                            publisher="Microsoft.ManagedServices",
                            type="ApplicationHealthLinux", type_handler_version="2.0",
                            auto_upgrade_minor_version=True,
                            settings={"protocol": "http", "port": 80, "requestPath": "/"}))]))))
    body = scale_set.as_dict(exclude_readonly=True)

    index.validate_body(VMSS_PUT, body)
    body["properties"]["upgradePolicy"]["rollingUpgradePolicy"]["maxBatchInstancePercent"] = 101
    assert rejection(index, VMSS_PUT, body).target == \
        "properties.upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent"


def test_unknown_and_null_properties_are_ignored(index):
    body = example_body(index, VMSS_PUT)
    body["somethingNew"] = {"nested": [1, 2]}
    body["properties"]["overprovision"] = None
    body["properties"]["virtualMachineProfile"]["futureFeature"] = "on"

    index.validate_body(VMSS_PUT, body)


# --- speed and concurrency -----------------------------------------------------------------------

def largest_vmss_body(index):
    bodies = [e.body for e in index.examples(VMSS_PUT)]
    body = copy.deepcopy(max(bodies, key=lambda b: len(json.dumps(b))))
    body["sku"]["capacity"] = 1000
    return body


def test_validation_is_fast(index):
    put_body = largest_vmss_body(index)
    delete_body = {"instanceIds": [str(i) for i in range(1000)]}
    cases = ((VMSS_PUT, put_body), ("VirtualMachineScaleSets_DeleteInstances", delete_body))
    for operation_id, body in cases:
        index.validate_body(operation_id, body)  # compiles the validator once
        runs = 50
        start = time.thread_time()   # CPU time: what validation costs, not how busy the machine is
        for _ in range(runs):
            index.validate_body(operation_id, body)
        per_call = (time.thread_time() - start) / runs
        assert per_call < 0.002, f"{operation_id}: {per_call * 1000:.2f} ms"


def test_first_validations_from_many_threads(index):
    fresh = specs.SpecIndex.load(index.root)
    body = largest_vmss_body(index)
    errors = []

    def validate():
        try:
            fresh.validate_body(VMSS_PUT, body)
        except Exception as error:  # noqa: BLE001 - any failure is the finding
            errors.append(error)

    threads = [threading.Thread(target=validate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
