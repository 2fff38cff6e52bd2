"""``import ferkit`` and its light modules load no heavy library; the public names still resolve on use."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "timm", "torchvision", "cv2", "open_clip")


def _modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("code", ["import ferkit", "import ferkit.labels", "import ferkit, ferkit.errors"])
def test_light_imports_load_no_heavy_library(code):
    mods = _modules(code)
    assert not [m for m in HEAVY if m in mods], code
    assert len(mods) < 400  # measured ~130 (was ~2,800 when `import ferkit` built the registry)


def test_public_names_and_subpackages_resolve_lazily():
    import ferkit

    assert callable(ferkit.create_model) and callable(ferkit.load) and "neutral" in ferkit.CANONICAL
    assert ferkit.detect.create_detector is not None and "poster_v2" in ferkit.list_models()
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ferkit.nope  # noqa: B018


def test_version_answers_without_importing_the_commands():
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "ferkit", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().startswith("ferkit ")
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "ferkit" in imported and "torch" not in imported and "ferkit.cli.train" not in imported
