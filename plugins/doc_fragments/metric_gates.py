# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # metric_gates of rollout and blue_green. Keep in sync with OPTIONS in plugins/module_utils/_metrics.py.

    DOCUMENTATION = r"""
options:
  metric_gates:
    description:
      - Gates on Azure Monitor metrics, judged once the health gate has passed - for M(fleetops.vmss.rollout) on each
        batch (after O(fleetops.vmss.rollout#module:canary_soak)), the baseline being the instances not upgraded
        yet; for M(fleetops.vmss.blue_green) on green once it is Healthy in the backend pools and again through
        O(fleetops.vmss.blue_green#module:soak), the baseline being blue while it still serves. Each gate reads one
        metric over O(metric_gates[].window) seconds, split per instance, and compares the judged instances with a
        threshold, on complete grains only - those begun after the health gate passed, never the grain in progress.
      - The reads repeat every O(wait_sleep) seconds while there is too little data, at most O(health_timeout)
        seconds (then C(MetricTimeout)). A failing gate (C(MetricGateFailed)) stops the run exactly like a health
        breach; the values, the baseline and the threshold are in the halt reason and in the record
        (C(batches[].metrics)).
      - A fault reading metrics (throttling, 5xx, no answer, after the retries) interrupts the run; it is never a
        verdict.
      - Needs azure-mgmt-monitor and C(Microsoft.Insights/metrics/read) on each gate's resource. Cost - one
        C(metrics) GET per gate per read. See docs/metric_gates.md.
    type: list
    elements: dict
    suboptions:
      metric:
        description: The metric name, for example V(Percentage CPU), V(requests/failed), V(DipAvailability).
        type: str
        required: true
      namespace:
        description: The metric namespace (C(metricnamespace)); by default the resource type's own.
        type: str
      resource:
        description:
          - The full id of the resource whose metric is read (an Application Insights component, a load balancer);
            by default the scale set.
        type: str
      aggregation:
        description: The aggregation read per instance and grain.
        type: str
        choices: [average, count, maximum, minimum, total]
        default: average
      filter:
        description: A dimension C($filter) added to the per-instance split, for example V(request/success eq 'False').
        type: str
      window:
        description: Seconds of metrics read, ending at the read.
        type: float
        default: 300
      interval:
        description: The grain in seconds (whole minutes, as Azure Monitor's grains).
        type: int
        default: 60
      max:
        description: The batch value must not be above this.
        type: float
      min:
        description: The batch value must not be below this.
        type: float
      max_ratio_to_baseline:
        description:
          - The batch value must not be more than this many times the baseline, the same value over the
            instances not upgraded yet (blue for M(fleetops.vmss.blue_green)). Not judged when there is none (noted).
        type: float
      min_samples:
        description:
          - Points with data (per instance and grain) the batch, and the baseline of a relative gate, need
            before the gate is judged.
        type: int
        default: 3
      instance_dimension:
        description:
          - The dimension naming instances; its values are matched with each instance's VM name, computer name
            or instance id. Default V(VMName) on a scale set, V(cloud/roleInstance) on any other resource.
        type: str
"""
