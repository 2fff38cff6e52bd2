"""The web page in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium): upload a photo
and see its box, label and bars; the webcam through Chromium's fake camera playing a video of a real face. Skips when
no browser is installed. ``FERKIT_SERVE_SCREENSHOT=path.png`` also saves the photo screenshot there."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferkit.serve import ServedModel
from tests.serve._helpers import EXAMPLES, MODEL, httpx, start

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,1000", "--force-device-scale-factor=1", "--hide-scrollbars")


def write_y4m(path: Path, photo: Path, frames: int = 10) -> Path:
    """A YUV4MPEG2 clip (Chromium's fake camera file format) showing ``photo``."""
    img = Image.open(photo).convert("RGB")
    w, h = (img.width // 2) * 2, (img.height // 2) * 2
    y, u, v = img.crop((0, 0, w, h)).convert("YCbCr").split()
    u, v = (c.resize((w // 2, h // 2), Image.BILINEAR) for c in (u, v))
    frame = b"FRAME\n" + y.tobytes() + u.tobytes() + v.tobytes()
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return path


@pytest.fixture(scope="module")
def page_server(recognizer):
    srv = start(ServedModel(MODEL, recognizer))
    yield srv
    srv.stop()


@pytest.fixture
def browser(tmp_path):
    """A factory of headless Chromium sessions (closed at the end of the test)."""
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip("no Chromium / ChromeDriver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def make(*extra: str):
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={tmp_path / f'profile{len(drivers)}'}", *extra):
            opts.add_argument(flag)
        driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
        driver.set_window_size(1280, 1000)
        drivers.append(driver)
        return driver

    yield make
    for d in drivers:
        d.quit()


def wait_for(driver, css: str, timeout: float = 60):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])


def border_matches(shot: np.ndarray, rect: dict, colour: np.ndarray) -> float:
    """Share of rows along the box's left border (3 px wide) whose pixel is the label's colour."""
    x = int(round(rect["x"])) + 1
    ys = range(int(rect["y"]) + 6, int(rect["y"] + rect["height"]) - 6)
    hits = [np.abs(shot[y, x, :3].astype(int) - colour).max() <= 40 for y in ys]
    return float(np.mean(hits))


def test_upload_a_photo(browser, page_server, tmp_path):
    from selenium.webdriver.common.by import By

    driver = browser()
    driver.get(page_server.url + "/")
    wait_for(driver, "#model option")
    assert driver.find_element(By.ID, "model").get_attribute("value") == MODEL
    warning = driver.find_element(By.ID, "warning")
    assert warning.is_displayed() and "untrained" in warning.text  # random weights are flagged
    for hidden in ("apikey-form", "webcam", "webcam-stop"):  # no key needed, webcam not started
        assert not driver.find_element(By.ID, hidden).is_displayed(), hidden
    driver.find_element(By.ID, "file").send_keys(str(EXAMPLES / "astronaut.jpg"))
    card = wait_for(driver, ".result[data-status='done']")
    boxes = card.find_elements(By.CSS_SELECTOR, ".face-box")
    assert len(boxes) == 1 and card.get_attribute("data-faces") == "1"
    api = httpx.post(page_server.url + "/v1/predict", content=(EXAMPLES / "astronaut.jpg").read_bytes(),
                     headers={"Content-Type": "image/jpeg"}).json()["records"][0]["faces"][0]
    label = boxes[0].find_element(By.CSS_SELECTOR, ".face-label")
    assert label.text == f"{api['label']} {api['label_score']:.2f}"
    rows = card.find_elements(By.CSS_SELECTOR, ".face-card .bar-row")
    assert [r.get_attribute("data-label") for r in rows] == list(api["scores"])
    assert card.find_element(By.CSS_SELECTOR, ".bar-row.top").get_attribute("data-label") == api["label"]
    # the box sits on the face: image pixels scaled to the size the photo is shown at
    img = card.find_element(By.CSS_SELECTOR, ".stage img").rect
    scale = img["width"] / 512
    box = boxes[0].rect
    assert 0.5 < scale <= 1 and abs(img["height"] / 512 - scale) < 0.01
    assert abs(box["x"] - img["x"] - scale * api["box"][0]) < 3 and abs(box["y"] - img["y"] - scale * api["box"][1]) < 3
    assert abs(box["width"] - scale * (api["box"][2] - api["box"][0])) < 3
    png = driver.get_screenshot_as_png()
    (tmp_path / "page.png").write_bytes(png)
    if os.environ.get("FERKIT_SERVE_SCREENSHOT"):
        Path(os.environ["FERKIT_SERVE_SCREENSHOT"]).write_bytes(png)
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    colours = httpx.get(page_server.url + "/v1/models").json()["models"][0]["colours"]
    assert border_matches(shot, box, hex_rgb(colours[api["label"]])) > 0.9
    inside = shot[int(box["y"]) + 20:int(box["y"] + box["height"]) - 20, int(box["x"]) + 20:int(box["x"]) + 40]
    assert inside.std() > 10  # the photo is drawn under the overlay (not a blank page)


def test_bad_file_shows_an_error(browser, page_server, tmp_path):
    from selenium.webdriver.common.by import By

    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    driver = browser()
    driver.get(page_server.url + "/")
    wait_for(driver, "#model option")
    driver.find_element(By.ID, "file").send_keys(str(bad))
    card = wait_for(driver, ".result[data-status='failed']")
    assert "notes.jpg: not an image" in card.find_element(By.CSS_SELECTOR, ".message").text


def test_webcam_with_a_fake_camera(browser, page_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clip = write_y4m(tmp_path / "face.y4m", EXAMPLES / "grace_hopper.jpg")
    driver = browser("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                     f"--use-file-for-fake-video-capture={clip}")
    driver.get(page_server.url + "/")
    wait_for(driver, "#model option")
    driver.find_element(By.ID, "webcam-start").click()
    WebDriverWait(driver, 90).until(lambda d: int(d.find_element(By.ID, "webcam").get_attribute("data-frames")
                                                  or 0) >= 3)
    wait_for(driver, "#webcam .overlay .face-box")
    # the overlay is redrawn for every frame (same still face, same place): read it in one script call
    state = driver.execute_script("""
        const box = document.querySelector('#webcam .overlay .face-box'), r = box.getBoundingClientRect();
        return {x: r.x, y: r.y, width: r.width, height: r.height, label: box.dataset.label,
                boxes: document.querySelectorAll('#webcam .overlay .face-box').length,
                cards: document.querySelectorAll('#webcam .face-card').length,
                videoWidth: document.getElementById('video').videoWidth};""")
    assert state["videoWidth"] == 512 and state["boxes"] == 1 and state["cards"] == 1
    assert "frames/s" in driver.find_element(By.ID, "webcam-rate").text
    png = driver.get_screenshot_as_png()
    (tmp_path / "webcam.png").write_bytes(png)
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    colours = httpx.get(page_server.url + "/v1/models").json()["models"][0]["colours"]
    assert border_matches(shot, state, hex_rgb(colours[state["label"]])) > 0.9
    driver.find_element(By.ID, "webcam-stop").click()
    assert driver.find_element(By.ID, "webcam-start").is_displayed()
    assert not driver.find_element(By.ID, "webcam-stop").is_displayed()


def test_api_key_prompt(browser, recognizer):
    from selenium.webdriver.common.by import By

    srv = start(ServedModel(MODEL, recognizer), api_key="page-key")
    try:
        driver = browser()
        driver.get(srv.url + "/")
        form = wait_for(driver, "#apikey-form:not([hidden])")
        assert form.is_displayed() and not driver.find_elements(By.CSS_SELECTOR, "#model option")
        driver.find_element(By.ID, "apikey").send_keys("page-key")
        form.find_element(By.CSS_SELECTOR, "button").click()
        wait_for(driver, "#model option")
        assert not form.is_displayed()
        driver.find_element(By.ID, "file").send_keys(str(EXAMPLES / "grace_hopper.jpg"))
        card = wait_for(driver, ".result[data-status='done']")
        assert card.get_attribute("data-faces") == "1"
    finally:
        srv.stop()


def test_switch_models(browser, recognizer):
    """Two served models: the menu lists both, and a photo sent after switching uses the chosen one (its detector
    returns the middle half of the image instead of the face)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.serve._helpers import SlowDetector, variant

    srv = start({"faces": recognizer, "centre": variant(recognizer, SlowDetector(0.0))})
    try:
        driver = browser()
        driver.get(srv.url + "/")
        wait_for(driver, "#model option")
        menu = Select(driver.find_element(By.ID, "model"))
        assert [o.text for o in menu.options] == ["faces", "centre"] and menu.first_selected_option.text == "faces"
        menu.select_by_visible_text("centre")
        assert "detector slow" in driver.find_element(By.ID, "model-info").text
        driver.find_element(By.ID, "file").send_keys(str(EXAMPLES / "astronaut.jpg"))
        card = wait_for(driver, ".result[data-status='done']")
        img = card.find_element(By.CSS_SELECTOR, ".stage img").rect
        box = card.find_element(By.CSS_SELECTOR, ".face-box").rect
        assert abs(box["x"] - img["x"] - img["width"] / 4) < 3 and abs(box["width"] - img["width"] / 2) < 3
    finally:
        srv.stop()
