"""Housekeeping of what image builds leave: `tcup image --prune` removes
TCUP's images of other versions (and nobody else's), and every build writes
a build log of its own, owner-only, with the proxy's password masked."""

import io
import os
import re
import stat
import subprocess
import sys

import pytest

from conftest import base_env
from tcup.launcher.engine.connection import TITLE, TITLE_LABEL
from tcup.launcher.engine.image import KEPT_BUILD_LOGS, BuildLog, proxy_mask

OLD_TAG = "tcup:0000000000000000"
# Not TCUP's: the right label in another repository, the right repository without the label.
DECOYS = {"tcup-housekeeping/other:1": {TITLE_LABEL: TITLE}, "tcup:notbuiltbytcup": {}}


def build(engine, tag: str, labels: dict) -> None:
    # A layer of its own (3 MB), so that removing it frees space.
    dockerfile = f"FROM debian:bookworm-slim\nRUN echo {tag} > /which && head -c 3000000 /dev/urandom > /filler\n".encode()
    engine.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, labels=labels, pull=False, rm=True, forcerm=True)


def prune(tmp_path) -> str:
    done = subprocess.run([sys.executable, "-m", "tcup", "image", "--prune"], env=base_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout


def tags(engine) -> set:
    """Every image's names, as given (Podman adds localhost/ or docker.io/)."""
    return {re.sub(r"^(localhost/|docker\.io/(library/)?)", "", tag) for image in engine.images.list() for tag in image.tags}


@pytest.mark.engine
def test_prune_removes_only_other_versions_of_tcups_image(engine, image, tmp_path):
    build(engine, OLD_TAG, {TITLE_LABEL: TITLE})
    for tag, labels in DECOYS.items():
        build(engine, tag, labels)
    user = engine.containers.create(OLD_TAG, ["true"])
    try:
        said = prune(tmp_path)
        # A container still uses the old image: it stays, and the user hears why.
        assert f"kept {OLD_TAG}: a container still uses it" in said, said
        assert OLD_TAG in tags(engine)
        user.remove()
        user = None
        said = prune(tmp_path)
        first = said.splitlines()[0]
        match = re.fullmatch(rf"removed 1 old TCUP image \({OLD_TAG}\), freed ([0-9.]+) MB; kept {image}, this version's",
                             first)
        assert match and float(match.group(1)) >= 3.0, said
        left = tags(engine)
        assert OLD_TAG not in left
        assert {image, "debian:bookworm-slim", *DECOYS} <= left, left
        # Nothing more to do the second time.
        assert prune(tmp_path).startswith("removed 0 old TCUP images, freed 0.0 MB")
    finally:
        if user is not None:
            user.remove(force=True)
        for tag in [OLD_TAG, *DECOYS]:
            if tag in tags(engine):
                engine.images.remove(tag, force=True)


def test_each_build_writes_its_own_private_masked_log(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    proxies = {"HTTPS_PROXY": "http://builder:pr0xy-s3cret@proxy.example:3128"}
    paths = []
    for number in range(2):  # two builds of one tag
        with BuildLog("tcup:0123456789abcdef", io.StringIO(), proxy_mask(proxies)) as log:
            log.line(f"Step 1/2 : RUN pip install  # build {number}")
            log.line("ProxyError('Cannot connect to proxy.', http://builder:pr0xy-s3cret@proxy.example:3128)")
        paths.append(log.path)
    assert len(set(paths)) == 2 and all(path.parent == tmp_path / "tcup" for path in paths)
    for number, path in enumerate(paths):
        text = path.read_text()
        assert f"# build {number}" in text and "pr0xy-s3cret" not in text and "builder:***@proxy.example" in text
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_only_the_newest_build_logs_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    logs = tmp_path / "tcup"
    logs.mkdir()
    for number in range(KEPT_BUILD_LOGS + 3):
        old = logs / f"build-old{number}.log"
        old.write_text("old")
        os.utime(old, (1_000_000 + number, 1_000_000 + number))
    (logs / "debug.log").write_text("not a build log")
    with BuildLog("tcup:0123456789abcdef", io.StringIO()) as log:
        pass
    kept = sorted(path.name for path in logs.glob("build-*.log"))
    assert len(kept) == KEPT_BUILD_LOGS and log.path.name in kept
    # The oldest went; the newest stayed; other files are not build logs.
    assert {"build-old0.log", "build-old1.log", "build-old2.log", "build-old3.log"}.isdisjoint(kept)
    assert "build-old12.log" in kept and (logs / "debug.log").exists()
