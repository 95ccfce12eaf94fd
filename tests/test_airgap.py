"""Clouds behind an air gap: `tcup image --save` on a machine with PyPI,
`tcup image --load` on one without, and the run there builds nothing."""

import secrets
from pathlib import Path

import pytest

from conftest import base_env, only_run, openrc, tcup

pytestmark = [pytest.mark.engine, pytest.mark.keystone]

BASE = "debian:bookworm-slim"
NOWHERE = "http://127.0.0.1:9"  # a proxy that refuses: any build here would fail


@pytest.fixture
def without_base_image(engine, tmp_path_factory):
    """The base image leaves the engine for the test and comes back after."""
    kept = tmp_path_factory.mktemp("base") / "base.tar"
    with open(kept, "wb") as file:
        for chunk in engine.images.get(BASE).save(named=True):
            file.write(chunk)
    engine.images.remove(BASE, force=True)  # untags it even while a stopped container names it
    try:
        yield
    finally:
        with open(kept, "rb") as file:
            engine.images.load(file)


def test_a_saved_image_runs_with_no_base_no_ca_no_network(engine, image, keystone, pyz, tmp_path, watch,
                                                          without_base_image):
    saved = tmp_path / "tcup-image.tar.gz"
    # The base is gone already; the TCUP image holds its layers, so it saves whole.
    done = tcup(["image", "--save", str(saved)], base_env(tmp_path), pyz_path=pyz)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == image and saved.stat().st_size > 30_000_000
    assert not list(tmp_path.glob(".*.tmp"))  # the private writer left nothing aside
    engine.images.remove(image, force=True)
    assert not engine.images.list(name=BASE) and not engine.images.list(name=image)

    offline = dict(base_env(tmp_path), HTTPS_PROXY=NOWHERE, HTTP_PROXY=NOWHERE, https_proxy=NOWHERE,
                   http_proxy=NOWHERE, no_proxy="127.0.0.1,localhost")
    offline.pop("TCUP_CA_CERT", None)
    done = tcup(["image", "--load", str(saved)], offline, pyz_path=pyz)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == image

    env = openrc(keystone, "member", tmp_path, **{k: v for k, v in offline.items() if "proxy" in k.lower()})
    env.pop("TCUP_CA_CERT", None)
    done = tcup(["--no-upload", "--output", str(tmp_path / "runs"), "--regex",
                 r"test_tokens\.TokensV3Test\.test_(create|validate)_token\["], env, pyz_path=pyz)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "building image" not in done.stderr
    assert "Passed: 2  Failed: 0  Skipped: 0" in done.stdout
    assert (only_run(tmp_path / "runs") / "refstack.json").is_file()


def test_loading_a_file_that_is_not_an_image_says_so(engine, pyz, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all")
    done = tcup(["image", "--load", str(junk)], base_env(tmp_path), pyz_path=pyz)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tcup: error: ") and "tcup image --save" in lines[0], done.stderr


def doctored_copy(source: Path, target: Path, tags) -> None:
    """The `docker save` archive ``source`` with its image named ``tags`` instead."""
    import io
    import json
    import tarfile

    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for member in old:
            data = old.extractfile(member).read() if member.isfile() else None
            if member.name == "manifest.json":
                manifest = json.loads(data)
                data = json.dumps([{**manifest[0], "RepoTags": list(tags)}]).encode()
            elif member.name == "repositories":
                layer = next(iter(next(iter(json.loads(data).values())).values()))
                data = json.dumps({repo: {tag: layer} for repo, tag in (t.split(":") for t in tags)}).encode()
            if data is not None:
                member.size = len(data)
            new.addfile(member, io.BytesIO(data) if data is not None else None)


def test_an_archive_with_other_tags_is_refused_and_nothing_is_loaded(engine, tmp_path):
    """What a doctored archive would do: bring a base image of its own under
    a tag later builds use. Throwaway tags stand in for that tag here (the
    engine's own debian:bookworm-slim, which every build uses, is never
    touched); TCUP refuses the file before the engine sees any of it."""
    from docker.errors import ImageNotFound

    token = secrets.token_hex(4)
    tags = [f"tcup-test-doctored-{token}:bookworm-slim", f"tcup-test-doctored-{token}:extra"]
    base_id = engine.images.get(BASE).id
    saved = tmp_path / "base.tar"
    with open(saved, "wb") as file:
        for chunk in engine.images.get(BASE).save(named=True):
            file.write(chunk)
    doctored = tmp_path / "tcup-image.tar"
    doctored_copy(saved, doctored, tags)
    try:
        done = tcup(["image", "--load", str(doctored)], base_env(tmp_path))
        assert done.returncode == 2 and done.stdout == "", done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"tcup: error: {doctored} holds {tags[0]}, {tags[1]}, not only ")
        assert "nothing was loaded" in lines[0]
        assert engine.images.list(name=f"tcup-test-doctored-{token}") == []
        assert engine.images.get(BASE).id == base_id
    finally:
        for tag in tags:
            try:
                engine.images.remove(tag)
            except ImageNotFound:
                pass
