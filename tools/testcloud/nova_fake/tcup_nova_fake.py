"""Nova's fake hypervisor, with snapshots that upload an image.

``nova.virt.fake.FakeDriverWithoutFakeNodes`` keeps its node's uuid across
restarts, but its ``snapshot`` uploads nothing: the image stays queued and
every snapshot, backup or shelve waits until its timeout. Here a snapshot
uploads a small raw disk of zeros (a fake server has no disk to copy).

Nova loads drivers from ``nova.virt`` only; ``register()`` puts this module
there, before nova-compute loads ``compute_driver = tcup_fake.FakeDriver``.
"""

import io
import sys

from nova.image import glance
from nova.virt import fake

SNAPSHOT_BYTES = 1024 * 1024


class FakeDriver(fake.FakeDriverWithoutFakeNodes):
    """The fake hypervisor; its snapshots are real (empty) images."""

    def snapshot(self, context, instance, image_id, update_task_state):
        super().snapshot(context, instance, image_id, update_task_state)
        # raw: Glance rejects zeros declared as any other format.
        glance.API().update(context, image_id, {"disk_format": "raw", "container_format": "bare"},
                            data=io.BytesIO(bytes(SNAPSHOT_BYTES)), purge_props=False)


def register():
    """Make this module importable as ``nova.virt.tcup_fake``."""
    sys.modules["nova.virt.tcup_fake"] = sys.modules[__name__]
