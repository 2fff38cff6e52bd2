"""The HTTP API on a real server (uvicorn on a free loopback port): schemas, records equal to ``Recognizer.predict``,
annotated images, pre-cropped faces, models, health, OpenAPI, metrics."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.serve._helpers import EXAMPLES, MODEL, metric

FACE_KEYS = {"box", "box_xywh", "score", "label", "label_score", "scores", "landmarks"}


def test_health_ready_and_models(client, recognizer):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["models"] == {MODEL: "ready"}
    body = client.get("/v1/models").json()
    assert body["default"] == MODEL
    (m,) = body["models"]
    assert m["name"] == MODEL and m["state"] == "ready" and m["default"] is True
    assert m["label_names"] == list(recognizer.label_names) and m["num_classes"] == len(recognizer.label_names)
    assert m["input_size"] == 112 and m["detector"] == "yunet" and m["arch"] == "poster_v2_open"
    assert m["weights"] == "untrained" and m["trained"] is False  # random weights are flagged
    assert set(m["colours"]) == set(m["label_names"]) and all(c.startswith("#") for c in m["colours"].values())
    assert body["limits"]["max_images"] == 4 and "api_key" not in body["limits"]


def test_raw_jpeg_gives_the_records_of_predict(client, recognizer, astronaut):
    r = client.post("/v1/predict", content=astronaut, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"]
    body = r.json()
    assert body["model"] == MODEL and body["failed"] == 0 and body["faces"] == 1
    (rec,) = body["records"]
    assert rec["status"] == 200 and rec["error"] is None and rec["untrained"] is True
    expected = recognizer.predict(str(EXAMPLES / "astronaut.jpg")).to_dict()
    assert set(rec) == set(expected) | {"status"}  # the keys of `ferkit predict --format json`, plus status
    (face,) = rec["faces"]
    (want,) = expected["faces"]
    assert set(face) == FACE_KEYS
    assert face["box"] == want["box"] and face["label"] == want["label"]
    assert np.allclose(list(face["scores"].values()), list(want["scores"].values()), atol=1e-6)
    assert list(face["scores"]) == list(recognizer.label_names)
    assert abs(sum(face["scores"].values()) - 1) < 1e-9
    x1, y1, x2, y2 = face["box"]
    assert 150 < x1 < x2 < 300 and 40 < y1 < y2 < 200  # the astronaut's face (512x512 photo)


def test_multipart_several_images_in_order(client, astronaut, hopper):
    files = [("file", ("hopper.jpg", hopper, "image/jpeg")), ("images", ("astronaut.jpg", astronaut, "image/jpeg"))]
    body = client.post("/v1/predict", files=files).json()
    assert [r["input"] for r in body["records"]] == ["hopper.jpg", "astronaut.jpg"]
    assert [len(r["faces"]) for r in body["records"]] == [1, 1] and body["faces"] == 2
    w, h = Image.open(io.BytesIO(hopper)).size
    x1, y1, x2, y2 = body["records"][0]["faces"][0]["box"]
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h


@pytest.mark.parametrize("fmt, kind", [("true", "image/jpeg"), ("png", "image/png")])
def test_annotated_image(client, astronaut, fmt, kind):
    rec = client.post(f"/v1/predict?annotate={fmt}", content=astronaut,
                      headers={"Content-Type": "image/jpeg"}).json()["records"][0]
    assert rec["annotated"]["media_type"] == kind
    img = Image.open(io.BytesIO(base64.b64decode(rec["annotated"]["data"])))
    assert img.format == kind.split("/")[1].upper() and img.size == (512, 512)
    orig = np.asarray(Image.open(io.BytesIO(astronaut)).convert("RGB"), dtype=np.int16)
    drawn = np.asarray(img.convert("RGB"), dtype=np.int16)
    x1, y1, x2, y2 = (round(v) for v in rec["faces"][0]["box"])
    band = np.abs(drawn[y1 + 8:y2 - 8, x1 - 1:x1 + 3] - orig[y1 + 8:y2 - 8, x1 - 1:x1 + 3]).mean()
    assert band > 30  # the box's left edge is drawn where the face is


def test_logits_on_request(client, astronaut):
    face = client.post("/v1/predict?logits=true", content=astronaut,
                       headers={"Content-Type": "application/octet-stream"}).json()["records"][0]["faces"][0]
    assert set(face["logits"]) == set(face["scores"])
    z = np.array(list(face["logits"].values()))
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.allclose(p, list(face["scores"].values()), atol=1e-5)


def test_pre_cropped_faces_without_detector(client, fer_crops, recognizer):
    files = [("file", (p.name, p.read_bytes(), "image/png")) for p in fer_crops]
    body = client.post("/v1/predict?detect=false", files=files).json()
    assert body["failed"] == 0 and body["faces"] == len(fer_crops)
    for path, rec in zip(fer_crops, body["records"]):
        assert rec["input"] == path.name
        (face,) = rec["faces"]
        assert face["box"] == [0.0, 0.0, 48.0, 48.0] and face["score"] == 1.0 and face["landmarks"] is None
    # the same as a recognizer built for crops (detector none, crop none)
    import ferkit

    crops = ferkit.load(MODEL, detector="none", device="cpu")
    want = crops.predict(str(fer_crops[0])).faces[0].scores
    assert np.allclose(list(body["records"][0]["faces"][0]["scores"].values()), list(want.values()), atol=1e-6)


def test_metrics_count_requests_faces_and_batches(client, astronaut):
    before = client.get("/metrics").text
    for _ in range(2):
        client.post("/v1/predict", content=astronaut, headers={"Content-Type": "image/jpeg"})
    client.post("/v1/predict", content=b"not an image", headers={"Content-Type": "image/jpeg"})
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = r.text
    ok = dict(endpoint="/v1/predict", method="POST", status="200")
    assert metric(after, "ferkit_http_requests_total", **ok) - metric(before, "ferkit_http_requests_total", **ok) == 2
    bad = dict(endpoint="/v1/predict", method="POST", status="415")
    assert metric(after, "ferkit_http_requests_total", **bad) - metric(before, "ferkit_http_requests_total", **bad) == 1
    err = dict(endpoint="/v1/predict", type="not_an_image")
    assert metric(after, "ferkit_errors_total", **err) - metric(before, "ferkit_errors_total", **err) == 1
    assert metric(after, "ferkit_faces_total", model=MODEL) - metric(before, "ferkit_faces_total", model=MODEL) == 2
    n = metric(after, "ferkit_batch_faces_count", model=MODEL) - metric(before, "ferkit_batch_faces_count", model=MODEL)
    assert n == 2
    lat = "ferkit_http_request_duration_seconds_count"
    assert metric(after, lat, endpoint="/v1/predict") - metric(before, lat, endpoint="/v1/predict") == 3
    assert metric(after, "process_resident_memory_bytes") > 50e6
    assert metric(after, "ferkit_model_info", model=MODEL, arch="poster_v2_open", detector="yunet",
                  weights="untrained") == 1


def test_openapi_and_offline_docs(client):
    spec = client.get("/openapi.json").json()
    for path in ("/v1/predict", "/v1/predict/video", "/v1/models", "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"]
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/jpeg" in body
    assert "X-API-Key" in json.dumps(spec["components"]["securitySchemes"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    pytest.importorskip("swagger_ui_bundle")
    assert "cdn." not in docs.text and "docs/assets/swagger-ui-bundle.js" in docs.text
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_page_is_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert 'src="static/app.js"' in page.text
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and "http://" not in r.text and "https://" not in r.text
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/static/..%2Fapp.py").status_code == 404
