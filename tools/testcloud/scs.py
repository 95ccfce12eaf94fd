"""What the ``scs`` profile seeds: SovereignCloudStack's standard flavors and images.

Flavors: exactly SCS-0103 v1's mandatory set (name, vCPUs, RAM, root disk),
with the extra specs that standard requires. 13 of the 15 have no root disk:
on an SCS cloud they boot from a volume, and Nova lets only admins boot a
server from an image on them (``os_compute_api:servers:create:zero_disk_flavor``).

Images: the ones SCS-0104 lists (``Ubuntu 24.04`` mandatory, ``Debian 12``
recommended), named "Distribution Version" as SCS-0102 asks, with the
properties SCS-0102 makes mandatory. They are small raw disks made here, like
the default cloud's: the fake hypervisor boots nothing.
"""

from __future__ import annotations

# SCS-0103 v1, "Mandatory": (name, vCPUs, RAM GiB, root disk GB; 0: none),
# in the standard's order.
MANDATORY_FLAVORS = [
    ("SCS-1V-4", 1, 4, 0), ("SCS-2V-8", 2, 8, 0), ("SCS-4V-16", 4, 16, 0),
    ("SCS-4V-16-100s", 4, 16, 100), ("SCS-8V-32", 8, 32, 0), ("SCS-1V-2", 1, 2, 0),
    ("SCS-2V-4", 2, 4, 0), ("SCS-2V-4-20s", 2, 4, 20), ("SCS-4V-8", 4, 8, 0),
    ("SCS-8V-16", 8, 16, 0), ("SCS-16V-32", 16, 32, 0), ("SCS-1V-8", 1, 8, 0),
    ("SCS-2V-16", 2, 16, 0), ("SCS-4V-32", 4, 32, 0), ("SCS-1L-1", 1, 1, 0),
]
# The vCPU letter of an SCS name (SCS-0100) and the scs:cpu-type it stands for.
CPU_TYPES = {"V": "shared-core", "L": "crowded-core"}

# SCS-0102's image properties every image here has; the recommended
# hypervisor_type is left out: the scheduler's ImagePropertiesFilter would
# refuse "qemu" on the fake hypervisor, which reports its own type.
COMMON_PROPERTIES = {
    "architecture": "x86_64", "hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi",
    "replace_frequency": "quarterly", "uuid_validity": "last-3", "provided_until": "none",
    "image_build_date": "2025-01-01",
}
# (name, bytes, min_disk GiB, min_ram MiB, properties); min_disk and min_ram
# as operators' image tooling commonly sets them for these distributions.
IMAGES = [
    ("Debian 12", 1024 * 1024, 8, 512, {
        "os_distro": "debian", "os_version": "12", "image_original_user": "debian",
        "image_source": "https://cloud.debian.org/images/cloud/bookworm/",
        "image_description": "https://cloud.debian.org/images/cloud/"}),
    ("Ubuntu 24.04", 2 * 1024 * 1024, 8, 512, {
        "os_distro": "ubuntu", "os_version": "24.04", "image_original_user": "ubuntu",
        "image_source": "https://cloud-images.ubuntu.com/releases/noble/",
        "image_description": "https://cloud-images.ubuntu.com/"}),
]


def flavor_specs(name: str, disk: int) -> dict[str, str]:
    """SCS-0103's extra specs of a standard flavor: its v1 name (dashes after
    the first one as colons), its v2 name, its vCPU type and, with a disk,
    the disk's type (the "s" suffix: ssd)."""
    prefix, rest = name.split("-", 1)
    cpu_letter = rest.split("-", 1)[0][-1]
    specs = {"scs:name-v1": f"{prefix}-{rest.replace('-', ':')}", "scs:name-v2": name,
             "scs:cpu-type": CPU_TYPES[cpu_letter]}
    if disk:
        specs["scs:disk0-type"] = "ssd" if name.endswith("s") else "network"
    return specs


def flavors() -> list[dict]:
    """Nova's create bodies of the mandatory flavors (ids chosen by Nova, as
    on a real cloud), each with its ``extra_specs``."""
    return [{"name": name, "vcpus": vcpus, "ram": ram * 1024, "disk": disk,
             "extra_specs": flavor_specs(name, disk)}
            for name, vcpus, ram, disk in MANDATORY_FLAVORS]


def images() -> list[dict]:
    """Glance's create bodies of the images, each with its ``size`` in bytes
    (the raw disk to upload) and an ``os:`` tag as SCS-0102 recommends."""
    return [{"name": name, "size": size, "min_disk": min_disk, "min_ram": min_ram,
             "tags": [f"os:{properties['os_distro']}"], **COMMON_PROPERTIES, **properties}
            for name, size, min_disk, min_ram, properties in IMAGES]
