"""docker-py against berthd (issue 2): version, run with and without detach, logs, stop, remove, images,
volumes, and the errors docker-py turns into exceptions.

Run by test/e2e/dockerpy.test.ts with DOCKER_HOST set to a berthd that has busybox:latest loaded:
  python3 -m pytest -q test/compat/dockerpy          (pyenv python, docker 7.1.0, pytest)
  /usr/bin/python3 test/compat/dockerpy/test_basic.py  (Debian python3-docker 5.0.3, no pytest needed)
Every test removes the containers it made, so both runs can share one daemon.
"""
import os
import sys
import time
import traceback

import docker
import docker.errors


def client():
    return docker.DockerClient(base_url=os.environ["DOCKER_HOST"], version="auto", timeout=60)


def all_ids(c):
    return sorted(x.id for x in c.containers.list(all=True))


def force_remove(c, *names):
    for n in names:
        try:
            c.api.remove_container(n, force=True)
        except docker.errors.NotFound:
            pass


def expect_error(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc_type.__name__))


def test_version_and_ping():
    c = client()
    v = c.version()
    assert v["ApiVersion"] == "1.52", v
    assert v["Os"] == "linux", v
    assert c.ping() is True
    # docker-py puts the server's version verbatim in its paths.
    assert c.api._version == "1.52", c.api._version
    info = c.info()
    assert info["Driver"] == "overlay2", info["Driver"]
    assert info["CgroupDriver"] == "cgroupfs"


def test_run_remove_returns_output_and_leaves_nothing():
    c = client()
    before = all_ids(c)
    out = c.containers.run("busybox", "echo hi", remove=True)
    assert out == b"hi\n", out
    assert all_ids(c) == before


def test_run_nonzero_exit_raises_container_error():
    c = client()
    name = "py-fail"
    try:
        e = expect_error(docker.errors.ContainerError, c.containers.run, "busybox",
                         ["sh", "-c", "echo out; echo err >&2; exit 3"], name=name)
        assert e.exit_status == 3, e.exit_status
        assert e.stderr == b"err\n", e.stderr
        ctr = c.containers.get(name)
        assert ctr.attrs["State"]["ExitCode"] == 3
        assert ctr.logs(stdout=True, stderr=False) == b"out\n"
        assert ctr.logs(stdout=False, stderr=True) == b"err\n"
    finally:
        force_remove(c, name)


def test_run_detach_logs_stop_remove():
    c = client()
    name = "py-detach"
    try:
        ctr = c.containers.run("busybox", ["sh", "-c", "echo started; sleep 30"], detach=True, name=name,
                               labels={"suite": "dockerpy"})
        assert len(ctr.id) == 64
        deadline = time.time() + 15
        while b"started" not in ctr.logs() and time.time() < deadline:
            time.sleep(0.1)
        assert ctr.logs() == b"started\n", ctr.logs()
        ctr.reload()
        assert ctr.status == "running", ctr.status
        assert ctr.name == name
        assert ctr.attrs["Config"]["Hostname"] == ctr.id[:12]
        listed = c.containers.list(filters={"label": ["suite=dockerpy"]})
        assert [x.id for x in listed] == [ctr.id], listed
        assert c.containers.get(ctr.id[:12]).id == ctr.id

        ctr.stop(timeout=1)
        assert ctr.wait()["StatusCode"] == 137
        ctr.reload()
        assert ctr.status == "exited"
        assert c.containers.list(filters={"label": ["suite=dockerpy"]}) == []
        assert [x.id for x in c.containers.list(all=True, filters={"label": ["suite=dockerpy"]})] == [ctr.id]
        ctr.remove()
        expect_error(docker.errors.NotFound, c.containers.get, name)
    finally:
        force_remove(c, name)


def test_images_list():
    c = client()
    images = c.images.list()
    tags = [t for i in images for t in i.tags]
    assert "busybox:latest" in tags, tags
    img = c.images.get("busybox")
    assert img.id.startswith("sha256:") and len(img.id) == 71, img.id
    assert "busybox:latest" in img.tags
    assert img.attrs["Config"]["Cmd"] == ["sh"], img.attrs["Config"]


def test_errors():
    c = client()
    before = all_ids(c)
    expect_error(docker.errors.NotFound, c.containers.get, "nosuch-py")
    e = expect_error(docker.errors.ImageNotFound, c.containers.create, "nosuch-image-py", "true")
    assert e.status_code == 404
    name = "py-dup"
    try:
        c.containers.create("busybox", "true", name=name)
        e = expect_error(docker.errors.APIError, c.containers.create, "busybox", "true", name=name)
        assert e.status_code == 409, e.status_code
        assert "is already in use" in e.explanation, e.explanation
        e = expect_error(docker.errors.APIError, c.containers.create, "busybox", "true", name="bad name")
        assert e.status_code == 400, e.status_code
        assert "Invalid container name" in e.explanation, e.explanation
    finally:
        force_remove(c, name)
    assert all_ids(c) == before


def test_volumes():
    c = client()
    name = "py-vol-%d" % os.getpid()
    vol = c.volumes.create(name=name, labels={"py": "1"})
    try:
        assert vol.name == name
        assert vol.attrs["Driver"] == "local"
        assert name in [v.name for v in c.volumes.list(filters={"label": "py=1"})]
        c.containers.run("busybox", ["sh", "-c", "echo kept > /data/f"], volumes={name: {"bind": "/data", "mode": "rw"}},
                         remove=True)
        out = c.containers.run("busybox", ["cat", "/v/f"], volumes=["%s:/v:ro" % name], remove=True)
        assert out == b"kept\n", out
        e = expect_error(docker.errors.NotFound, c.volumes.get, "nosuch-py-vol")
        assert e.status_code == 404
    finally:
        c.volumes.get(name).remove()
    assert name not in [v.name for v in c.volumes.list()]


if __name__ == "__main__":
    # A runner for interpreters without pytest (Debian's /usr/bin/python3).
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    failed = 0
    for n, f in tests:
        try:
            f()
            print("ok", n)
        except Exception:  # noqa: BLE001 - report every failure, then exit non-zero
            failed += 1
            print("FAIL", n)
            traceback.print_exc()
    print("%d passed, %d failed (docker %s, python %s)" % (len(tests) - failed, failed, docker.__version__,
                                                            sys.version.split()[0]))
    sys.exit(1 if failed else 0)
