"""Bad input never takes the server down and never gives a 500 with a traceback: each failure is a JSON error with
the right status (400/401/413/415/422), and a bad image among good ones only fails itself."""

from __future__ import annotations

import http.client
import io
import struct
import zlib

import numpy as np
from PIL import Image

from ferkit.serve import ServedModel
from tests.serve._helpers import MODEL, httpx, metric, start


def error_of(r, status: int, kind: str | None = None) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert err["status"] == status and err["message"] and "Traceback" not in r.text
    if kind is not None:
        assert err["type"] == kind, err
    return err["message"]


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring ``width`` x ``height`` grey pixels, with a tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def bomb_png(side: int = 3000) -> bytes:
    """A real decompression bomb: ``side`` x ``side`` black pixels compress to a few KB."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((side, side), np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def test_corrupt_and_non_image_bytes(client, astronaut):
    msg = error_of(client.post("/v1/predict", content=astronaut[:4000], headers={"Content-Type": "image/jpeg"}),
                   400, "invalid_image")
    assert "truncated" in msg
    msg = error_of(client.post("/v1/predict", files={"file": ("notes.txt", b"just some text\n" * 50, "text/plain")}),
                   415, "not_an_image")
    assert msg.startswith("notes.txt: not an image") and "JPEG" in msg
    error_of(client.post("/v1/predict", content=b"", headers={"Content-Type": "image/png"}), 400, "empty_upload")


def test_wrong_content_types(client, astronaut):
    msg = error_of(client.post("/v1/predict", content=astronaut, headers={"Content-Type": "text/plain"}),
                   415, "unsupported_content_type")
    assert "multipart/form-data" in msg
    error_of(client.post("/v1/predict", json={"image": "x"}), 415, "unsupported_content_type")
    error_of(client.post("/v1/predict", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}),
             400, "bad_multipart")  # no boundary
    error_of(client.post("/v1/predict", data={"annotate": "true"}, files={}), 415)  # urlencoded form, no file
    r = client.post("/v1/predict", files={"note": (None, "text only")})
    error_of(r, 422, "no_image")


def test_format_not_accepted(recognizer, astronaut):
    buf = io.BytesIO()
    Image.open(io.BytesIO(astronaut)).save(buf, format="BMP")
    srv = start(ServedModel(MODEL, recognizer), formats=("jpeg", "png"))
    try:
        r = httpx.post(srv.url + "/v1/predict", content=buf.getvalue(), headers={"Content-Type": "image/bmp"})
        assert "image format BMP is not accepted; accepted: JPEG, PNG" in error_of(r, 415, "format_not_allowed")
    finally:
        srv.stop()


def test_decompression_bombs_are_refused_before_decoding(client):
    bomb = bomb_png(3000)
    assert len(bomb) < 50_000
    msg = error_of(client.post("/v1/predict", content=bomb, headers={"Content-Type": "image/png"}),
                   413, "too_many_pixels")
    assert "3000x3000 = 9,000,000 pixels is more than the limit of 4,000,000" in msg
    huge = png_header_only(100_000, 100_000)  # 10 gigapixels declared in 100 bytes
    error_of(client.post("/v1/predict", content=huge, headers={"Content-Type": "image/png"}), 413, "too_many_pixels")


def test_body_limits(server, client, astronaut):
    # a huge declared size is refused before anything is read
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.putrequest("POST", "/v1/predict")
    conn.putheader("Content-Type", "image/jpeg")
    conn.putheader("Content-Length", str(50 * 2**30))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and b"larger than the limit of 3,000,000 bytes" in resp.read()
    conn.close()
    # a body streamed without Content-Length is cut off at the limit
    def chunks():
        for _ in range(100):
            yield b"\xff" * 100_000

    r = client.post("/v1/predict", content=chunks(), headers={"Content-Type": "image/jpeg"})
    error_of(r, 413, "upload_too_large")
    files = [("file", (f"{i}.jpg", astronaut, "image/jpeg")) for i in range(5)]
    assert "the limit is 4" in error_of(client.post("/v1/predict", files=files), 413, "too_many_files")


def test_bad_item_does_not_fail_the_others(client, astronaut):
    files = [("file", ("good.jpg", astronaut, "image/jpeg")), ("file", ("cut.jpg", astronaut[:3000], "image/jpeg")),
             ("file", ("text.jpg", b"hello", "image/jpeg")), ("file", ("bomb.png", bomb_png(), "image/png"))]
    r = client.post("/v1/predict", files=files)
    assert r.status_code == 200
    recs = r.json()["records"]
    assert [x["status"] for x in recs] == [200, 400, 415, 413]
    assert len(recs[0]["faces"]) == 1 and recs[0]["error"] is None
    assert all(x["faces"] == [] and x["error"] for x in recs[1:])
    assert r.json()["failed"] == 3


def test_parameters(client, astronaut):
    hdr = {"Content-Type": "image/jpeg"}
    msg = error_of(client.post("/v1/predict?model=nope", content=astronaut, headers=hdr), 422, "unknown_model")
    assert MODEL in msg
    error_of(client.post("/v1/predict?annotate=gif", content=astronaut, headers=hdr), 422, "invalid_parameter")
    error_of(client.post("/v1/predict?detect=maybe", content=astronaut, headers=hdr), 422, "invalid_parameter")
    error_of(client.get("/v1/predict"), 405)
    error_of(client.get("/v1/nothing"), 404, "not_found")


def test_api_key_and_cors(recognizer, astronaut):
    srv = start(ServedModel(MODEL, recognizer), api_key="s3cret", cors_origins=("http://app.example",))
    try:
        url, hdr = srv.url, {"Content-Type": "image/jpeg"}
        msg = error_of(httpx.post(url + "/v1/predict", content=astronaut, headers=hdr), 401, "unauthorized")
        assert "missing X-API-Key" in msg
        error_of(httpx.get(url + "/v1/models", headers={"X-API-Key": "wrong"}), 401, "unauthorized")
        assert httpx.post(url + "/v1/predict", content=astronaut, headers={**hdr, "X-API-Key": "s3cret"}).is_success
        for open_path in ("/healthz", "/readyz", "/", "/metrics", "/openapi.json"):
            assert httpx.get(url + open_path).status_code == 200, open_path
        pre = httpx.options(url + "/v1/predict", headers={"Origin": "http://app.example",
                                                          "Access-Control-Request-Method": "POST",
                                                          "Access-Control-Request-Headers": "x-api-key"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "http://app.example"
        denied = httpx.get(url + "/v1/models", headers={"Origin": "http://evil.example", "X-API-Key": "s3cret"})
        assert "access-control-allow-origin" not in denied.headers
        m = httpx.get(url + "/metrics").text
        assert metric(m, "ferkit_errors_total", endpoint="/v1/predict", type="unauthorized") == 1
    finally:
        srv.stop()


def test_no_500_and_server_alive_after_abuse(client):
    text = client.get("/metrics").text
    assert 'status="500"' not in text
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
