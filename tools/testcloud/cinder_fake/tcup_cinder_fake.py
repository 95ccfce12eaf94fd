"""Cinder's FakeLoggingVolumeDriver, with image copies that work.

The fake driver (``cinder.tests.fake_driver``) inherits the LVM driver's
image copies, which write to and read from ``/dev/cinder-volumes/...``: a
volume created from an image fails, and so does uploading a volume to an
image. A fake volume holds no bytes, so here the first copies nothing and the
second uploads a small raw disk of zeros.
"""

import os
import tempfile

from cinder.tests import fake_driver
from cinder.volume import volume_utils

# The size of what a volume uploads: enough to be a disk, small enough to
# keep Glance's store tiny.
UPLOAD_BYTES = 1024 * 1024


class FakeVolumeDriver(fake_driver.FakeLoggingVolumeDriver):
    """FakeLoggingVolumeDriver whose volumes take and give images."""

    def copy_image_to_volume(self, context, volume, image_service, image_id,
                             disable_sparse=False):
        """Nothing to write: the volume exists in the database only."""

    def copy_volume_to_image(self, context, volume, image_service, image_meta):
        """Upload a raw disk of zeros as the volume's content."""
        fd, path = tempfile.mkstemp(prefix="tcup-volume-")
        try:
            os.ftruncate(fd, UPLOAD_BYTES)
            os.close(fd)
            volume_utils.upload_volume(context, image_service, image_meta, path, volume)
        finally:
            os.unlink(path)
