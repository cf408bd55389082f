"""The human-study page round trip: write it, open it in headless Chromium, click, save the
answers, and turn them into rectified accuracy (CLI `analyze`)."""

import json
import shutil
import time
from pathlib import Path

import pytest

from dldiy_core.testing import assert_user_error, run_cli
from dldiy_imagenet_bias.cli import main
from dldiy_imagenet_bias.data import photo_set
from dldiy_imagenet_bias.study import read_answers, read_study, write_study

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def fake_records():
    items = photo_set().items[:4]
    oks = [True, False, False, False]
    return [{"id": i, "path": it.path, "label": it.label, "wnid": it.wnid,
             "top": [{"class": 1, "name": "goldfish", "p": 0.5}, {"class": 2, "name": "shark",
                                                                  "p": 0.2}],
             "top1_ok": ok, "topk_ok": ok} for i, (it, ok) in enumerate(zip(items, oks,
                                                                             strict=True))]


def test_page_lists_each_mistake_with_its_image(tmp_path):
    page = write_study(fake_records(), tmp_path / "s", study_id="t1")
    text = page.read_text()
    assert text.count('class="card"') == 3  # the correct prediction is not shown
    assert len(list((tmp_path / "s" / "images").iterdir())) == 3
    assert read_study(tmp_path / "s")[0] == "t1"


def test_analyze_turns_answers_into_rectified_accuracy(tmp_path):
    write_study(fake_records(), tmp_path / "s", study_id="t1")
    (tmp_path / "a.json").write_text(json.dumps({"study": "t1", "answers": {"1": True,
                                                                           "2": False}}))
    r = run_cli(main, ["analyze", "--study", str(tmp_path / "s"), "--answers",
                       str(tmp_path / "a.json"), "--json", str(tmp_path / "r.json")])
    assert r.code == 0, r.err
    figures = json.loads((tmp_path / "r.json").read_text())["figures"]
    assert figures["top1"] == 0.25 and figures["rectified_top1"] == 0.5
    (tmp_path / "b.json").write_text(json.dumps({"study": "other", "answers": {}}))
    assert_user_error(run_cli(main, ["analyze", "--study", str(tmp_path / "s"), "--answers",
                                     str(tmp_path / "b.json")]), "b.json", "study")


def _real_study(tmp_path):
    """`study` on the real Lite0 and the bundled photos: the command a user types."""
    r = run_cli(main, ["study", "--set", "data.images=photos", "--out", str(tmp_path / "study")])
    assert r.code == 0, r.err
    study_id, recs = read_study(tmp_path / "study")
    mistakes = [x["id"] for x in recs if not x["top1_ok"]]
    assert len(recs) == 10 and len(mistakes) >= 2, recs
    return study_id, recs, mistakes


def test_study_and_analyze_on_the_real_model(tmp_path):
    """study -> answers -> analyze on real predictions: one mistake judged acceptable raises
    top-1 by exactly one image, an unanswered one stays wrong."""
    study_id, recs, mistakes = _real_study(tmp_path)
    (tmp_path / "a.json").write_text(json.dumps({"study": study_id,
                                                 "answers": {str(mistakes[0]): True}}))
    r = run_cli(main, ["analyze", "--study", str(tmp_path / "study"), "--answers",
                       str(tmp_path / "a.json"), "--json", str(tmp_path / "r.json")])
    assert r.code == 0, r.err
    f = json.loads((tmp_path / "r.json").read_text())["figures"]
    ok = sum(x["top1_ok"] for x in recs)
    assert f["top1"] == ok / 10 and f["rectified_top1"] == (ok + 1) / 10
    assert f["n_mistakes"] == len(mistakes) and f["n_answered"] == f["n_accepted"] == 1


@pytest.mark.integration
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian chromium + chromium-driver")
def test_study_page_in_headless_chromium(tmp_path):
    """The page of the real `study` command, answered in a browser, read by `analyze`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    study_id, recs, mistakes = _real_study(tmp_path)
    page = tmp_path / "study" / "index.html"
    a, b = mistakes[:2]
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run"):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.execute_cdp_cmd("Page.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": str(downloads)})
        driver.get(Path(page).resolve().as_uri())
        imgs = driver.find_elements(By.CSS_SELECTOR, ".card img")
        assert len(imgs) == len(mistakes)
        assert all(driver.execute_script("return arguments[0].naturalWidth", i) > 0
                   for i in imgs)
        driver.find_element(By.CSS_SELECTOR, f"#m{a} button.ok").click()
        driver.find_element(By.CSS_SELECTOR, f"#m{b} button.ok").click()
        driver.find_element(By.CSS_SELECTOR, f"#m{b} button.no").click()  # changed their mind
        assert driver.find_element(By.ID, "count").text == "2"
        assert driver.find_element(By.ID, f"m{a}").get_attribute("data-answer") == "acceptable"
        driver.find_element(By.ID, "save").click()
        saved = downloads / "answers.json"
        deadline = time.monotonic() + 20
        while not saved.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert saved.exists(), list(downloads.iterdir())
    finally:
        driver.quit()
    answers = read_answers(saved, study_id)
    assert answers == {a: True, b: False}
    r = run_cli(main, ["analyze", "--study", str(tmp_path / "study"), "--answers", str(saved)])
    assert r.code == 0, r.err
    ok = sum(x["top1_ok"] for x in recs)
    assert json.loads(r.out)["rectified_top1"] == (ok + 1) / len(recs)
