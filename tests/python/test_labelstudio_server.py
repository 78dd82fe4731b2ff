"""The Label Studio round trip through a real Label Studio server (1.23, installed by
`make venv-labelstudio` into .venv-labelstudio/): a project with Foramen's labelling
config, the tasks `foramen export label-studio --model` wrote (images served by Label
Studio's local-files storage, predictions attached), some predictions accepted as the
annotation, others replaced by edited brush masks made with `label-studio-converter`'s
encoder, the server's JSON export, `foramen import label-studio`, every mask compared
pixel for pixel with what was submitted.

The server listens on loopback only, keeps its data in a temporary folder and is stopped
by its process id when the test ends. $FORAMEN_LABEL_STUDIO names the `label-studio`
executable (make sets it, and then a missing one is a failure); without it the test
looks in .venv-labelstudio/ and is skipped when Label Studio is not installed there."""

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO

brush = pytest.importorskip("label_studio_converter.brush")

CLASSES = ["bone", "ligament", "disc"]
FRAMES = 6  # tasks: the first half accepted as predicted, the rest edited
SIZE = (320, 180)
START_TIMEOUT_S = 240
EMAIL = "foramen@example.org"
PASSWORD = "foramen-test-pass"
TOKEN = "0123456789abcdef0123456789abcdef01234567"


def label_studio_exe() -> Path:
    env = os.environ.get("FORAMEN_LABEL_STUDIO")
    if env:
        path = Path(env)
        if not path.is_file():
            pytest.fail(f"FORAMEN_LABEL_STUDIO={env} does not exist: run `make venv-labelstudio`")
        return path
    path = REPO / ".venv-labelstudio/bin/label-studio"
    if not path.is_file():
        pytest.skip("Label Studio not installed: `make venv-labelstudio` (or `make test`) installs it")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """Label Studio's HTTP API through urllib: a session login (cookies, CSRF), then the
    legacy token as the docs of 1.23 describe (../shared/docs/label-studio.md)."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.token = None

    def cookie(self, name):
        return next((c.value for c in self.jar if c.name == name), None)

    def raw(self, method, path, body=None, headers=None, form=False):
        headers = dict(headers or {})
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with self.opener.open(req, timeout=120) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def api(self, method, path, body=None):
        status, data = self.raw(method, path, body)
        assert 200 <= status < 300, f"{method} {path}: HTTP {status}: {data[:500]!r}"
        return json.loads(data) if data else None

    def login(self):
        status, page = self.raw("GET", "/user/login/")
        assert status == 200, f"login page: HTTP {status}"
        m = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert m, "no csrfmiddlewaretoken on the login page"
        form = {"csrfmiddlewaretoken": m.group(1).decode(), "email": EMAIL, "password": PASSWORD}
        status, _ = self.raw("POST", "/user/login/", form, {"Referer": self.base + "/user/login/"}, form=True)
        assert status in (200, 302), f"login: HTTP {status}"
        assert self.cookie("sessionid"), "login did not give a session"
        # Legacy tokens are off for new organisations in 1.23: switch them on.
        csrf = {"X-CSRFToken": self.cookie("csrftoken"), "Referer": self.base + "/"}
        status, data = self.raw(
            "POST", "/api/jwt/settings", {"api_tokens_enabled": True, "legacy_api_tokens_enabled": True}, csrf
        )
        assert 200 <= status < 300, f"/api/jwt/settings: HTTP {status}: {data[:300]!r}"
        status, data = self.raw("GET", "/api/current-user/token")
        assert status == 200, f"/api/current-user/token: HTTP {status}"
        token = json.loads(data)["token"]
        # From here on the token alone: a fresh cookie jar proves it works without the session.
        self.jar.clear()
        self.token = token


@pytest.fixture()
def server(tmp_path):
    """A Label Studio server on a free loopback port, its data in tmp_path; yields
    (base URL, local-files document root); stopped by its process id afterwards."""
    exe = label_studio_exe()
    docroot = tmp_path / "files"
    docroot.mkdir()
    data = tmp_path / "ls-data"
    port = free_port()
    env = dict(
        os.environ,
        LABEL_STUDIO_BASE_DATA_DIR=str(data),
        LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
        LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(docroot),
        LABEL_STUDIO_USERNAME=EMAIL,
        LABEL_STUDIO_PASSWORD=PASSWORD,
        LABEL_STUDIO_USER_TOKEN=TOKEN,
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        COLLECT_ANALYTICS="false",
        LATEST_VERSION_CHECK="false",
    )
    log = open(tmp_path / "label-studio.log", "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [exe, "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"label-studio exited ({proc.returncode}): {tail(tmp_path / 'label-studio.log')}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() - t0 > START_TIMEOUT_S:
                pytest.fail(
                    f"label-studio not healthy after {START_TIMEOUT_S} s: {tail(tmp_path / 'label-studio.log')}"
                )
            time.sleep(1)
        yield base, docroot, time.monotonic() - t0
    finally:
        stop(proc)
        log.close()


def stop(proc):
    """Ends the server we started, by its process id (its process group, which we made)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def tail(path, n=3000):
    return path.read_bytes()[-n:].decode(errors="replace") if path.exists() else ""


def decode_result(results, w, h):
    """Class-index mask of brush results, painted in order, with Label Studio's decoder."""
    m = np.zeros((h, w), np.uint8)
    for r in results:
        assert r["type"] == "brushlabels"
        assert (r["original_width"], r["original_height"]) == (w, h)
        layer = brush.decode_rle(bytes(r["value"]["rle"])).reshape(h, w, 4)[:, :, 3] > 127
        m[layer] = CLASSES.index(r["value"]["brushlabels"][0]) + 1
    return m


def encode_result(m):
    """Brush results of a class-index mask with Label Studio's encoder."""
    h, w = m.shape
    out = []
    for c, name in enumerate(CLASSES, start=1):
        layer = ((m == c) * 255).astype(np.uint8)
        if layer.any():
            out.append(
                {
                    "from_name": "tag",
                    "to_name": "image",
                    "type": "brushlabels",
                    "original_width": w,
                    "original_height": h,
                    "image_rotation": 0,
                    "value": {"format": "rle", "rle": brush.mask2rle(layer), "brushlabels": [name]},
                }
            )
    return out


def edit(m, k):
    """An annotator's edit: a ligament band painted over, a disc blob added, a corner erased."""
    m = m.copy()
    h, w = m.shape
    m[h // 3 : h // 3 + 12 + k, w // 5 : w // 2] = 2
    yy, xx = np.mgrid[0:h, 0:w]
    m[(yy - h // 2) ** 2 + (xx - 2 * w // 3 - k) ** 2 < (20 + k) ** 2] = 3
    m[: h // 6, : w // 6] = 0
    return m


def foramen(binary, *args):
    r = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"foramen {' '.join(map(str, args))}: {r.stderr}"
    return r


def export_and_import(ls, foramen_bin, pid, tmp_path, images_args):
    """The project's JSON export from the server, imported by `foramen import label-studio`
    once per `--images` folder; returns (the export, {folder: data set})."""
    status, export = ls.raw("GET", f"/api/projects/{pid}/export?exportType=JSON")
    assert status == 200, f"export: HTTP {status}: {export[:300]!r}"
    export_path = tmp_path / f"export-{pid}.json"
    export_path.write_bytes(export)
    out = {}
    for images in images_args:
        out[images] = tmp_path / f"ds-{pid}-{images.name}"
        foramen(
            foramen_bin,
            "import",
            "label-studio",
            export_path,
            "--images",
            images,
            "--out",
            out[images],
            "--classes",
            ",".join(CLASSES),
            "--split",
            "100,0,0",
        )
    return json.loads(export), out


def count_equal(ds, expected, docroot):
    """Every mask pixel for pixel, every image byte for byte; the number of masks."""
    for name, want in expected.items():
        got = np.array(Image.open(ds / "masks" / (Path(name).stem + ".png")))
        assert got.shape == want.shape, name
        diff = int((got != want).sum())
        assert diff == 0, f"{ds.name}/{name}: {diff} pixels differ from what was submitted"
        assert (ds / "images" / name).read_bytes() == (docroot / "images" / name).read_bytes()
    return len(expected)


def project_tasks(ls, pid):
    listed = ls.api("GET", f"/api/tasks?project={pid}&page_size=100")
    listed = listed["tasks"] if isinstance(listed, dict) else listed
    return [ls.api("GET", f"/api/tasks/{t['id']}") for t in sorted(listed, key=lambda t: t["id"])]


def served_name(ls, task, docroot):
    """The frame a task shows, checked as the server serves it: the file's own bytes."""
    url = task["data"]["image"]
    path = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["d"][0]
    status, body = ls.raw("GET", urllib.parse.urlsplit(url)._replace(scheme="", netloc="").geturl())
    assert status == 200, f"{url}: HTTP {status}"
    assert body == (docroot / path).read_bytes(), f"{url}: not the file's bytes"
    return path.rsplit("/", 1)[-1]


def export_frames(foramen_bin, tmp_path, docroot):
    """Frames to label under the local-files document root, as a hospital would serve
    them, exported with the bundled model's masks: the tasks file."""
    size = f"{SIZE[0]}x{SIZE[1]}"
    foramen(foramen_bin, "synth", "--out", tmp_path / "synth", "--count", FRAMES, "--seed", 23, "--size", size)
    (tmp_path / "synth/images").rename(docroot / "images")
    # A name the URL must escape (`+` is a space in a query): written as %2B, served and
    # imported under its own name.
    last = sorted((docroot / "images").iterdir())[-1]
    last.rename(last.with_name("case+7_000099.png"))
    assert len(list((docroot / "images").iterdir())) == FRAMES
    tasks_json = tmp_path / "tasks.json"
    foramen(
        foramen_bin,
        "export",
        "label-studio",
        "--images",
        docroot / "images",
        "--out",
        tasks_json,
        "--model",
        REPO / "models/lumbar-synth.onnx",
        "--image-root",
        "/data/local-files/?d=images",
    )
    return tasks_json


def annotate_predicted(ls, listed, docroot):
    """Annotates each task: the first half accepted as predicted (the prediction's own
    result becomes the annotation), the rest edited. The masks each should import as."""
    expected = {}
    for k, task in enumerate(listed):
        name = served_name(ls, task, docroot)
        preds = task["predictions"] if task.get("predictions") else ls.api("GET", f"/api/predictions?task={task['id']}")
        assert len(preds) == 1, preds
        w, h = Image.open(docroot / "images" / name).size
        predicted = decode_result(preds[0]["result"], w, h)
        assert (predicted > 0).any(), f"{name}: the model predicted nothing"
        if k < FRAMES // 2:
            result, want = preds[0]["result"], predicted
        else:
            want = edit(predicted, k)
            result = encode_result(want)
        ls.api(
            "POST",
            f"/api/tasks/{task['id']}/annotations",
            {"result": result, "was_cancelled": False, "ground_truth": False, "parent_prediction": preds[0]["id"]},
        )
        expected[name] = want
    return expected


def synced_project(ls, xml, storage, docroot):
    """The other route: Label Studio makes the tasks itself by syncing the storage (its
    URLs percent-encode the path, `case%2B7_000099.png`); each annotated from scratch.
    The project's id and the masks each task should import as."""
    synced = ls.api("POST", "/api/projects", {"title": "Foramen synced storage", "label_config": xml})["id"]
    sid = ls.api("POST", "/api/storages/localfiles", {"project": synced, **storage})["id"]
    ls.api("POST", f"/api/storages/localfiles/{sid}/sync")
    deadline = time.monotonic() + 60
    while len(listed := project_tasks(ls, synced)) < FRAMES and time.monotonic() < deadline:
        time.sleep(1)
    assert len(listed) == FRAMES, f"storage sync made {len(listed)} tasks"
    expected = {}
    for k, task in enumerate(listed):
        name = served_name(ls, task, docroot)
        expected[name] = edit(np.zeros((SIZE[1], SIZE[0]), np.uint8), 2 * k)
        ls.api("POST", f"/api/tasks/{task['id']}/annotations", {"result": encode_result(expected[name])})
    return synced, expected


def test_round_trip_through_a_label_studio_server(tmp_path, foramen_bin, server, capsys):
    base, docroot, started_s = server
    t0 = time.monotonic()
    tasks_json = export_frames(foramen_bin, tmp_path, docroot)
    tasks = json.loads(tasks_json.read_text())
    xml = tasks_json.with_suffix(".xml").read_text()

    ls = Client(base)
    ls.login()
    pid = ls.api("POST", "/api/projects", {"title": "Foramen round trip", "label_config": xml})["id"]
    # Local-files storage: the server serves the frames only below a storage's path.
    storage = {"title": "frames", "path": str(docroot / "images"), "regex_filter": r".*\.png", "use_blob_urls": True}
    ls.api("POST", "/api/storages/localfiles", {"project": pid, **storage})
    imported = ls.api("POST", f"/api/projects/{pid}/import", tasks)
    assert imported["task_count"] == FRAMES, imported
    assert imported["prediction_count"] == FRAMES, imported

    listed = project_tasks(ls, pid)
    assert len(listed) == FRAMES
    expected = annotate_predicted(ls, listed, docroot)
    exported, datasets = export_and_import(ls, foramen_bin, pid, tmp_path, [docroot / "images", docroot])
    assert len(exported) == FRAMES
    assert all(t["data"]["image"].startswith("/data/local-files/?d=") for t in exported), exported[0]["data"]
    assert any(t["data"]["image"].endswith("/case%2B7_000099.png") for t in exported)
    equal = [count_equal(ds, expected, docroot) for ds in datasets.values()]

    synced, synced_expected = synced_project(ls, xml, storage, docroot)
    exported2, datasets2 = export_and_import(ls, foramen_bin, synced, tmp_path, [docroot / "images"])
    assert any("%2B" in t["data"]["image"] for t in exported2), [t["data"]["image"] for t in exported2]
    equal += [count_equal(ds, synced_expected, docroot) for ds in datasets2.values()]

    with capsys.disabled():
        print(
            f"\nlabel-studio round trip: project {pid}, {len(exported)} tasks "
            f"({FRAMES // 2} accepted, {FRAMES - FRAMES // 2} edited), masks equal {equal[0]}/{len(expected)} "
            f"(and {equal[1]}/{len(expected)} with --images at the document root); storage-synced project "
            f"{synced}, {len(exported2)} tasks, masks equal {equal[2]}/{len(synced_expected)}; "
            f"server healthy after {started_s:.0f} s, round trip {time.monotonic() - t0:.1f} s"
        )
