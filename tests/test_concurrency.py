"""Several TCUP runs at once on one machine.

The story: four CI jobs (or four people on one jump host) start TCUP at the
same moment against the same cloud, saving under the same directory; each
gets its own complete result set, its own container, and the one shared
image. And on a machine that has no image yet, two first runs both build it
at once, and both succeed.
"""

import json
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, base_env, openrc
from test_interrupts import TWO_TESTS, RunWatch, check_private, wait_until_gone

pytestmark = pytest.mark.engine


@pytest.mark.keystone
def test_four_runs_at_once_give_four_separate_complete_result_sets(image, keystone, engine, tmp_path):
    output = tmp_path / "runs"
    who = ["admin", "member", "admin", "member"]
    with RunWatch(engine, tmp_path) as watch:
        runs = []
        for number, user in enumerate(who):
            home = tmp_path / f"user{number}"
            home.mkdir()
            runs.append(subprocess.Popen(
                [sys.executable, "-m", "tcup", "--no-upload", "--output", str(output), "--regex", TWO_TESTS],
                env=openrc(keystone, user, home), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True))
        said = [run.communicate(timeout=1200) for run in runs]
        wait_until_gone(engine, watch.tcup_containers() | set(watch.seen))

    for run, (stdout, stderr) in zip(runs, said):
        assert run.returncode == 0, stderr[-3000:]
        assert "building image" not in stderr  # the one image on hand served all four
    # Four directories, one named by each run, each complete and private.
    saved = [Path(re.search(r"^Results saved in (.+)$", stdout, re.M).group(1)) for stdout, _ in said]
    assert sorted(saved) == sorted(output.iterdir()) and len(set(saved)) == 4
    for path, user in zip(saved, who):
        meta = json.loads((path / "run.json").read_text())
        assert meta["complete"] is True and (meta["passed"], meta["failed"]) == (2, 0)
        assert meta["credentials"] == ("dynamic" if user == "admin" else "preprovisioned")
        assert len(json.loads((path / "refstack.json").read_text())["results"]) == 2
        check_private(path)
    # Four containers, each writing to its own run and no other, all from the one image.
    inspected = [json.loads(record["inspect"]) for record in watch.seen.values() if "inspect" in record]
    assert len(watch.seen) == 4 and len(inspected) == 4
    mounts = sorted(m["Source"] for i in inspected for m in i["Mounts"])
    assert mounts == sorted(str(path) + ".incomplete" for path in saved)
    assert {i["Config"]["Image"] for i in inspected} == {image}


@pytest.fixture
def fresh_checkout(image, engine, tmp_path):
    """A copy of the checkout whose image no engine has yet: the same image
    plus one build step of its own, so it gets a tag of its own (the shared
    image, which other tests use, is never removed)."""
    copy = tmp_path / "checkout"
    # The package's image/ (a link to the repository's) is copied as files.
    shutil.copytree(ROOT / "src" / "tcup", copy / "src" / "tcup", ignore=shutil.ignore_patterns("__pycache__"))
    mark = f"org.openstack.tcup.test={secrets.token_hex(8)}"
    with open(copy / "src" / "tcup" / "image" / "Dockerfile", "a") as dockerfile:
        # A step that takes a moment, so the two builds surely overlap; a
        # label that finds both images (the one tagged last, and the other).
        dockerfile.write(f"\nLABEL {mark}\nRUN sleep 5\n")
    env = base_env(tmp_path)
    env["PYTHONPATH"] = str(copy / "src")
    tag = subprocess.run([sys.executable, "-m", "tcup", "--version"], env=env, capture_output=True, text=True,
                         check=True).stdout.split("(image ")[1].rstrip(")\n")
    assert tag != image
    yield env, tag
    for built in engine.images.list(filters={"label": mark}):  # the two built, not their layers
        engine.images.remove(built.id, force=True)


def test_two_first_runs_building_the_same_image_at_once_both_succeed(fresh_checkout, engine, tmp_path):
    env, tag = fresh_checkout
    builds = []
    for number in range(2):
        # Each its own cache (the build log), as two users' would be.
        builds.append(subprocess.Popen(
            [sys.executable, "-m", "tcup", "image"], env=dict(env, XDG_CACHE_HOME=str(tmp_path / f"cache{number}")),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    said = [build.communicate(timeout=1800) for build in builds]
    for build, (stdout, stderr) in zip(builds, said):
        assert build.returncode == 0, stderr[-3000:]
        # Both were first: each found no image and built it.
        assert f"building image {tag} (no image for this TCUP version yet" in stderr
        assert stdout.strip().splitlines()[-1] == tag
    assert engine.images.get(tag).labels["org.opencontainers.image.title"] == "tcup"
