"""Small pieces of ``ferkit.serve``: limits and their environment variables, the Prometheus text, model lists,
upload names, and that ``import ferkit`` (and the CLI) does not import the web stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ferkit.serve import ServedModel, ServeLimits
from ferkit.serve.errors import ServeError
from ferkit.serve.metrics import Counter, Histogram, Metrics
from ferkit.serve.registry import served_models
from ferkit.serve.routes import annotation_format
from ferkit.serve.uploads import _safe_name


def test_limits_from_env_and_flags():
    env = {"FERKIT_SERVE_API_KEY": "from-env", "FERKIT_SERVE_CORS_ORIGINS": "http://a.example, http://b.example"}
    lim = ServeLimits.from_env(env, max_queue=8, api_key=None, formats=("jpg", "PNG", "tif"))
    assert lim.api_key == "from-env" and lim.cors_origins == ("http://a.example", "http://b.example")
    assert lim.max_queue == 8 and lim.formats == ("JPEG", "PNG", "TIFF")
    assert ServeLimits.from_env(env, api_key="flag").api_key == "flag"  # the flag wins
    public = lim.public()
    assert "api_key" not in public and public["api_key_required"] is True
    assert "from-env" not in repr(lim)


@pytest.mark.parametrize("bad, match", [({"max_queue": 0}, "max_queue"), ({"request_timeout": 0}, "request_timeout"),
                                        ({"max_wait_ms": -1}, "max_wait_ms"), ({"formats": ()}, "at least one"),
                                        ({"formats": ("JPEG", "HEIC")}, "unknown image format")])
def test_limits_are_validated(bad, match):
    with pytest.raises(ValueError, match=match):
        ServeLimits(**bad)


def test_prometheus_text():
    c = Counter("x_total", "things", ("kind",))
    c.inc(kind='a"b\\c\nd')
    c.inc(2, kind="plain")
    text = "\n".join(c.render())
    assert '# TYPE x_total counter' in text and 'x_total{kind="a\\"b\\\\c\\nd"} 1' in text
    assert 'x_total{kind="plain"} 2' in text
    h = Histogram("lat_seconds", "latency", ("ep",), buckets=(0.1, 1.0))
    for v in (0.05, 0.5, 0.7, 3.0):
        h.observe(v, ep="/p")
    lines = h.render()
    assert 'lat_seconds_bucket{ep="/p",le="0.1"} 1' in lines and 'lat_seconds_bucket{ep="/p",le="1"} 3' in lines
    assert 'lat_seconds_bucket{ep="/p",le="+Inf"} 4' in lines and 'lat_seconds_count{ep="/p"} 4' in lines
    assert 'lat_seconds_sum{ep="/p"} 4.25' in lines
    with pytest.raises(ValueError, match="takes labels"):
        c.inc(other="x")
    full = Metrics().render()
    assert "process_resident_memory_bytes " in full and "# TYPE ferkit_http_request_duration_seconds histogram" in full


def test_served_models_normalisation(recognizer):
    (one,) = served_models(recognizer)
    assert one.name == "poster_v2_open" and one.source is recognizer
    named = served_models({"a": recognizer, "b": lambda: recognizer})
    assert [m.name for m in named] == ["a", "b"]
    with pytest.raises(ValueError, match="same name: x"):
        served_models([ServedModel("x", recognizer), ServedModel("x", recognizer)])
    with pytest.raises(ValueError, match="at least one model"):
        served_models([])
    with pytest.raises(TypeError, match="must be a Recognizer"):
        served_models("poster_v2")


def test_annotation_format_and_names():
    assert [annotation_format(v) for v in (None, "false", "true", "JPG", "png")] == [None, None, "jpeg", "jpeg", "png"]
    with pytest.raises(ServeError, match="annotate must be"):
        annotation_format("gif")
    assert _safe_name("../../etc/passwd") == "passwd" and _safe_name("C:\\photos\\me.jpg") == "me.jpg"
    assert _safe_name("a\x00b\nc.jpg") == "a?b?c.jpg" and _safe_name("") == "upload"
    assert len(_safe_name("x" * 999)) == 200


def test_import_ferkit_stays_light():
    code = ("import sys, ferkit, ferkit.serve; from ferkit.cli.main import build_parser; build_parser(); "
            "heavy = [m for m in ('fastapi', 'uvicorn', 'starlette', 'pydantic') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
