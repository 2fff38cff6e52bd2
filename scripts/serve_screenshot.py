#!/usr/bin/env python
"""Screenshot of the `ferkit serve` page with the default model on the packaged photos (docs/img/serve_page.png).

    python scripts/serve_screenshot.py [--out docs/img/serve_page.png] [--port 8765]

Needs Chromium + ChromeDriver (Debian: chromium chromium-driver) and selenium (the `dev` extra).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "ferkit" / "resources" / "examples"


def wait_ready(url: str, seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"ferkit serve did not become ready at {url} in {seconds:.0f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "docs" / "img" / "serve_page.png"))
    p.add_argument("--port", type=int, default=8765)
    args = p.parse_args()
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([sys.executable, "-m", "ferkit", "serve", "--port", str(args.port)])
    try:
        wait_ready(url)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        with tempfile.TemporaryDirectory() as profile:
            for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
                         "--force-device-scale-factor=1", "--hide-scrollbars", f"--user-data-dir={profile}"):
                opts.add_argument(flag)
            driver = webdriver.Chrome(options=opts)
            try:
                driver.get(url + "/")
                photos = "\n".join(str(EXAMPLES / n) for n in ("astronaut.jpg", "grace_hopper.jpg"))
                driver.find_element(By.ID, "file").send_keys(photos)
                WebDriverWait(driver, 120).until(lambda d: len(d.find_elements(
                    By.CSS_SELECTOR, ".result[data-status='done']")) == 2)
                time.sleep(0.5)  # let the bars finish drawing
                Path(args.out).write_bytes(driver.get_screenshot_as_png())
            finally:
                driver.quit()
    finally:
        server.terminate()
        server.wait(30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
