"""Clouds behind an air gap: `tcup image --save` on a machine with PyPI,
`tcup image --load` on one without, and the run there builds nothing."""

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
