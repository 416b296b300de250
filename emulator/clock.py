"""Real clock, scaled durations.

Timestamps are real epoch seconds; only durations are scaled, so a 20-minute image build takes
12 seconds at time_scale 0.01 and every timestamp the API returns stays a real one.
"""
import datetime
import random
import time

# Realistic durations in seconds (time_scale 1.0). Sources are documented in emulator/README.md.
DURATIONS = {
    "lro_poll": 10,                 # Retry-After Compute sends when it starts an operation (recorded)
    "scale_set_update": 30,         # model-only PUT/PATCH of a scale set
    "scale_set_delete": 60,
    "instance_create": 90,          # provisioning a Linux VM from a gallery image
    "instance_upgrade": 120,        # manualupgrade: reimage onto the new model + extensions
    "instance_reimage": 120,
    "instance_restart": 45,
    "instance_deallocate": 60,
    "instance_start": 45,
    "instance_power_off": 30,
    "instance_delete": 60,
    "health_probe_interval": 5,     # Application Health extension default intervalInSeconds
    "repair_grace": 600,            # automaticRepairsPolicy default and minimum gracePeriod (PT10M)
    "rolling_health_wait": 300,     # how long a rolling-upgrade batch may take to turn Healthy
    "auto_os_upgrade_check": 60,    # how often automatic OS upgrade looks for a new latest version
    "image_build": 1200,            # Azure Image Builder customisation of a small Linux image
    # Canceling -> Canceled: the recording (cli_image_builder_cancel#09) shows Canceling on the read right after the
    # cancel, and Image Builder then tears down its build VM and staging resources; "a couple of minutes" is a
    # judgement, not a recorded figure. Long enough that a replay's next read cannot miss Canceling on a busy machine.
    "image_build_cancel": 120,
    "image_replication": 600,       # one region's gallery image version replication
    "gallery_write": 10,            # gallery or image definition create/update
    "gallery_delete": 10,
    "image_version_update": 30,     # an image version update that replicates nothing new
    "image_version_delete": 60,
    "image_template_write": 30,     # Image Builder template submission (validation)
    "image_template_delete": 120,
    "principal_replication": 30,    # Entra ID replication delay for a new managed identity
    "autoscale_evaluation": 60,     # the autoscale engine evaluates rules every minute
    "feature_registration": 180,    # Microsoft.Features: Registering -> Registered ("a few minutes")
}


class Clock:
    def __init__(self, time_scale=1.0, jitter=0.0, seed=None):
        self.time_scale = float(time_scale)
        self.jitter = float(jitter)
        self._random = random.Random(seed)

    @staticmethod
    def now():
        return time.time()

    @staticmethod
    def iso(t=None):
        t = time.time() if t is None else t
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat().replace("+00:00", "Z")

    def scaled(self, seconds):
        """Realistic seconds -> emulator seconds, with optional seeded jitter (+/- fraction)."""
        value = float(seconds) * self.time_scale
        if self.jitter:
            value *= 1 + self._random.uniform(-self.jitter, self.jitter)
        return max(value, 0.0)

    def duration(self, name):
        return self.scaled(DURATIONS[name])
