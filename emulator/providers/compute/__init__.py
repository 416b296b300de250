"""Microsoft.Compute: virtual machine scale sets (Uniform and Flexible), their instances, health.

Modules
    model.py      the scale-set model: normalise, merge (PUT / PATCH), validate, hash, render (pure)
    placement.py  zones, fault / update domains, scale-in choice, private IPs, names (pure)
    health.py     Application Health states from time + control-API rules (pure)
    views.py      ARM shapes of VMSS VMs, Flexible VMs, instance views (pure)
    instances.py  instance records (one store row each), operations over scaled time, the LRO timer
    scalesets.py  create / update / delete / actions with validation and 409 conflicts
    handlers.py   routes: scale sets and Uniform VMs;  vms.py: Flexible VMs;  extensions.py: VMSS extensions
    hooks.py      subnet-in-use, backend-pool members, resource-group cleanup for other providers
    rolling.py    Azure's rolling upgrades (model change in Rolling mode, osRollingUpgrade, extensionRollingUpgrade,
                  rollingUpgrades/latest and cancel, osUpgradeHistory,
                  approveRollingUpgrade of a deferred automatic OS upgrade): a timer-driven engine
    repairs.py    automatic instance repairs (engine);  autoupgrade.py: automatic OS image upgrades (engine)

API for engines (rolling upgrades, automatic repairs, autoscale). Call under ctx.lock; ids are
instance ids (Uniform: "0", "3"...; Flexible: VM names). Instances are dicts (see instances.py):
`instanceId`, `zone`, `fd`, `ud`, `model` (content hash), `generation`, `exactVersion`, `provisioningState`,
`power`, `protection`, `op` ({kind, ends, ...} while an operation runs), `since` (last boot), `error`, `surplus`
(an overprovisioned extra: ignore it, it disappears when its create ends).

    instances.list_instances(ctx, vmss_id, now=None) -> [instance]      live instances as of `now`
    instances.get_instance(ctx, vmss_id, instance_id, now=None)
    instances.busy(instance, now) -> bool                                an operation is running
    instances.load_state(ctx, vmss_id)["model"], ["generation"]          the set's current model hash, generation
    instances.latest_model_applied(ctx, vmss_id, instance, state=None)   by generation or content (config
        `latest_model`); instances.on_latest(ctx, state, model_hash, generation) is the rule itself
    instances.start_operation(ctx, vmss_id, ids, kind, *, arm_op=None, model_hash=None, exact_version=None,
                              generation=None)
        kind: upgrade | reimage | restart | start | deallocate | poweroff | delete
        -> {instance_id: epoch when it ends}. upgrade moves to `model_hash` (default: current model;
        pass an older hash, and the generation the instance ran, to roll back), `exact_version` pins the
        image version (an OS rollback).
        Failures from kv `instance_failures` apply to create / upgrade / reimage. Nothing checks
        conflicts here: the caller owns the batch.
    instances.create_instances(ctx, vmss_doc, count, *, arm_op=None, overprovision=False)
        -> {instance_id: ends}  (maxSurge: create before deleting; capacity is the caller's business)
    instances.set_model_applied(ctx, vmss_id, ids, model_hash=None)      at once, no operation
    instances.begin(ctx, vmss_doc, kind) -> op ; instances.track(ctx, op, ends)
        an ARM operation answered at `ends` (Failed with the first instance failure, if any)
    instances.hold(ctx, op_id) ; instances.release(ctx, op_id, status=None, error=None)
        keep a tracked operation open past its end, then answer it (deleting the set cancels it)
    instances.settle(ctx, vmss_id)                                       write finished ops down
    instances.MODEL_CHANGE_HOOKS.append(fn(ctx, vmss_id, op_id))         a PUT / PATCH in mode Rolling
    rolling.start(ctx, doc, kind, started_by, ops) ; rolling.latest(ctx, vmss_id)   rolling upgrades
    rolling.Fleet(ctx, doc, now)                        members, models, health of a set at `now`
    health.instance_health(ctx, instance, now=None) -> Healthy | Unhealthy | Unknown | Initializing | None
    placement.select_scale_in(instances, count, rules) -> [instance]     who a scale-in removes
    scalesets.refuse_if_busy(ctx, vmss_doc, instances)                   the 409 a client would get
    scalesets.members(instances)                                         those counting toward capacity
    scalesets.create_or_update(ctx, request, patch=True)                 change a set as a client PATCH does
        (request: .params {subscriptionId, resourceGroupName, vmScaleSetName}, .body, .headers, .query)

Durations (clock.DURATIONS): instance_create, instance_upgrade, instance_reimage, instance_restart,
instance_start, instance_deallocate, instance_power_off, instance_delete, scale_set_update,
scale_set_delete. Health timing comes from the extension settings (intervalInSeconds, numberOfProbes,
gracePeriod as the upper bound of Initializing; health.py), scaled by the clock.
"""
