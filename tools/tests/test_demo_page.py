"""The gathered demo page, opened in a real browser (headless Debian chromium)."""

import shutil
from pathlib import Path

import pytest
from conftest import run_tool

pytestmark = pytest.mark.integration

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")

# Every <img> decoded, every <audio> with metadata and no error, every summary row a section.
PAGE_CHECK = """
const done = arguments[arguments.length - 1];
const deadline = Date.now() + 10000;
(function poll() {
  const imgs = [...document.images], audio = [...document.querySelectorAll('audio')];
  const pending = imgs.some(i => !i.complete) ||
                  audio.some(a => !a.error && a.readyState < 1);
  if (pending && Date.now() < deadline) { setTimeout(poll, 100); return; }
  const problems = [];
  imgs.filter(i => !(i.complete && i.naturalWidth > 0))
      .forEach(i => problems.push('image ' + i.getAttribute('src')));
  audio.filter(a => a.error || !(a.duration > 0))
       .forEach(a => problems.push('audio ' + a.getAttribute('src')));
  const rows = [...document.querySelectorAll('table tr td:first-child')].map(td => td.textContent);
  rows.filter(name => !document.getElementById(name))
      .forEach(name => problems.push('section ' + name));
  done({problems, images: imgs.length, audio: audio.length, sections: rows.length});
})();
"""


def open_page(page: Path, screenshot: Path) -> dict:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1200,1600",
                 "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.set_script_timeout(20)
        driver.get(page.resolve().as_uri())
        result = driver.execute_async_script(PAGE_CHECK)
        driver.save_screenshot(str(screenshot))
        return result
    finally:
        driver.quit()


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian chromium + chromium-driver")
def test_demo_page_renders_every_image_audio_and_section(fixture_repo, tmp_path):
    out = tmp_path / "demo"
    assert run_tool("demo", "--out", str(out), root=fixture_repo).returncode == 0
    shot = tmp_path / "page.png"
    result = open_page(out / "index.html", shot)
    assert result == {"problems": [], "images": 2, "audio": 2, "sections": 2}
    assert shot.stat().st_size > 10_000
    reports = Path(__file__).resolve().parents[2] / "reports" / "test"
    reports.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, reports / "demo-page.png")

    (out / "tiny" / "curve.png").unlink()
    (out / "small" / "tone.wav").write_bytes(b"not audio")
    page = (out / "index.html").read_text()
    (out / "index.html").write_text(page.replace('<section id="small">', "<section>"))
    broken = open_page(out / "index.html", shot)
    assert sorted(broken["problems"]) == ["audio small/tone.wav", "image tiny/curve.png",
                                          "section small"]
