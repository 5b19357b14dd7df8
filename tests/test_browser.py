"""The HTML pages in a real browser (headless Chromium through Selenium): review.html of a
delete run and tsne.html of show, on real files, down to applying the saved decisions."""

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import HOSTILE_NAME, photo

from dedup_cli.act.apply import read_decisions
from dedup_cli.cli import main
from dedup_cli.present.review import write_review_page

pytestmark = pytest.mark.browser


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def wait_for(condition, timeout=10.0, step=0.05):
    """condition()'s first truthy value, polled; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {condition}")


def open_page(driver, page: Path) -> None:
    driver.get(page.absolute().as_uri())
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === '1'"))


def assert_no_alert(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 -- raises when no alert is open


@pytest.fixture
def library_with_hostile_name(small_library) -> Path:
    """small_library plus a copy of pic0 whose name is an HTML injection."""
    photo(0).resize((300, 225)).save(small_library / HOSTILE_NAME, quality=90)
    return small_library


def dry_run(images: Path, output: Path) -> Path:
    result = run("delete", "--images-path", images, "--output-path", output, "--no-progress")
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in output.iterdir() if p.is_dir()]
    return folder


def tile(driver, group: int, file: int):
    from selenium.webdriver.common.by import By

    section = driver.find_elements(By.CSS_SELECTOR, "section.group")[group]
    return section.find_elements(By.CSS_SELECTOR, "figure.file")[file]


def test_review_page_toggles_refuses_an_empty_group_saves_and_apply_follows(chromium, library_with_hostile_name,
                                                                              tmp_path):
    from selenium.webdriver.common.by import By

    folder = dry_run(library_with_hostile_name, tmp_path / "out")
    report = json.loads((folder / "report.json").read_text())
    open_page(chromium, folder / "review.html")
    assert_no_alert(chromium)
    assert len(chromium.find_elements(By.CSS_SELECTOR, "section.group")) == len(report["groups"]) == 3
    # Without thumbnails the page shows the files themselves, through relative links.
    wait_for(lambda: chromium.execute_script(
        "const imgs = [...document.querySelectorAll('section.group:first-of-type .thumb img')];"
        "return imgs.length > 0 && imgs.every(img => img.complete && img.naturalWidth > 0)"))

    # The hostile name is shown as text, and nothing it spells became an element.
    names = [node.text for node in chromium.find_elements(By.CSS_SELECTOR, ".name")]
    assert HOSTILE_NAME in names
    assert chromium.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0

    pic0 = next(n for n, g in enumerate(report["groups"]) if g["keep"][0]["path"].endswith("pic0.png"))
    keeper, duplicate = tile(chromium, pic0, 0), tile(chromium, pic0, 1)
    keeper.find_element(By.CSS_SELECTOR, ".choice").click()  # the only kept file: refused, visibly
    toast = chromium.find_element(By.ID, "toast")
    wait_for(lambda: "must keep at least one file" in toast.text)  # .text: only what is shown
    assert "keep" in keeper.get_attribute("class").split()

    duplicate.find_element(By.CSS_SELECTOR, ".choice").click()  # keep the duplicate ...
    keeper.find_element(By.CSS_SELECTOR, ".choice").click()  # ... and now the keeper may go
    assert "remove" in keeper.get_attribute("class").split() and "keep" in duplicate.get_attribute("class").split()
    assert "2 changed from the plan" in chromium.find_element(By.ID, "summary").text

    chromium.find_element(By.ID, "save").click()
    saved = wait_for(lambda: next(chromium.downloads.glob("decisions*.json"), None))
    decisions = json.loads(wait_for(lambda: saved.read_text() or None))
    kept_path, dup_path = report["groups"][pic0]["keep"][0]["path"], report["groups"][pic0]["remove"][0]["path"]
    assert decisions == {kept_path: "remove", dup_path: "keep"}  # what read_decisions takes, nothing else
    assert read_decisions(saved) == decisions
    assert "now: keep (changed from the plan)" in duplicate.text and "now: remove" in keeper.text
    chromium.save_screenshot(str(tmp_path / "review.png"))

    applied = run("apply", folder, "--decisions", saved)
    assert applied.exit_code == 0, applied.output
    assert Path(dup_path).exists() and not Path(kept_path).exists()
    assert (folder / "remove" / Path(kept_path).relative_to(library_with_hostile_name)).exists()
    others = [f["path"] for g in report["groups"] for f in g["remove"] if f["path"] != dup_path]
    assert others and not any(Path(p).exists() for p in others)  # the rest of the plan as it was
    assert all(Path(g["keep"][0]["path"]).exists() for n, g in enumerate(report["groups"]) if n != pic0)


def synthetic_report(groups: int, images: Path) -> dict:
    """A report of `groups` two-file groups over two real files (thumbnails shared)."""
    first, second = images / "a.png", images / "b.jpg"
    photo(1).save(first)
    photo(1).save(second, quality=80)

    def entry(path: Path, number: int, **extra) -> dict:
        return {"path": f"{path}#{number}", "width": 320, "height": 240, "size": 1000 + number,
                "mtime_ns": 0, "digest": "ab" * 16 if path == first else "cd" * 16, "hash": "00" * 8, **extra}

    return {"settings": {"images_path": str(images), "threshold_bits": 14, "keep_policy": "resolution",
                         "hash_algorithm": "phash", "hash_size": 8, "colour_check": True},
            "summary": {"dry_run": True},
            "groups": [{"id": n + 1, "keep": [entry(first, n)],
                        "remove": [entry(second, n, nearest_keep=f"{first}#{n}", bits=2, distance=2)]}
                       for n in range(groups)]}


def test_review_page_shows_fifty_groups_a_page_and_moves_by_keyboard(chromium, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    images, folder = tmp_path / "images", tmp_path / "run"
    images.mkdir()
    folder.mkdir()
    write_review_page(folder, synthetic_report(120, images))
    open_page(chromium, folder / "review.html")
    assert len(chromium.find_elements(By.CSS_SELECTOR, "section.group")) == 50
    body = chromium.find_element(By.TAG_NAME, "body")
    body.send_keys("n")
    assert chromium.execute_script("return window.dedupReview.page()") == 1
    assert chromium.find_element(By.CSS_SELECTOR, "section.group").get_attribute("id") == "group-51"
    body.send_keys("j", Keys.ARROW_DOWN, "k", "l", "x")  # group 52, its duplicate, back to keep
    assert chromium.execute_script("return window.dedupReview.current()") == [51, 1]
    assert chromium.execute_script("return window.dedupReview.choice(51, 1)") == "keep"
    body.send_keys("h", " ")  # the keeper may go now that the duplicate is kept
    assert chromium.execute_script("return window.dedupReview.choice(51, 0)") == "remove"
    body.send_keys("l", "x")  # ... but the duplicate, now the only kept file, may not
    assert chromium.execute_script("return window.dedupReview.choice(51, 1)") == "keep"
    wait_for(lambda: "must keep at least one file" in chromium.find_element(By.ID, "toast").text)
    body.send_keys("?")
    assert chromium.find_element(By.ID, "help").is_displayed()
    body.send_keys(Keys.ESCAPE, "c")  # compare the selected file with its kept file
    assert chromium.find_element(By.ID, "compare").is_displayed()
    body.send_keys(Keys.ESCAPE)
    assert not chromium.find_element(By.ID, "compare").is_displayed()
    assert_no_alert(chromium)


def test_map_page_shows_every_point_and_hover_names_the_file(chromium, library_with_hostile_name, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    result = run("show", "--images-path", library_with_hostile_name, "--output-path", tmp_path / "out",
                 "--no-progress")
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    rows = (folder / "tsne.csv").read_text().splitlines()[1:]
    open_page(chromium, folder / "tsne.html")
    assert_no_alert(chromium)
    assert chromium.execute_script("return window.dedupMap.count()") == len(rows) == 11
    canvas = chromium.find_element(By.ID, "map")
    paths = chromium.execute_script("return [...Array(window.dedupMap.count()).keys()].map(window.dedupMap.pathOf)")
    hostile = next(i for i, path in enumerate(paths) if path.endswith(HOSTILE_NAME))
    chromium.execute_script(f"window.dedupMap.centreOn({hostile}); window.dedupMap.zoom(8)")  # neighbours apart
    x, y = chromium.execute_script(f"return window.dedupMap.screenOf({hostile})")
    ActionChains(chromium).move_to_element_with_offset(canvas, int(x - canvas.size["width"] / 2),
                                                       int(y - canvas.size["height"] / 2)).perform()
    tip = chromium.find_element(By.ID, "tip")
    wait_for(tip.is_displayed)
    assert chromium.find_element(By.ID, "tip-path").text == HOSTILE_NAME  # as text, relative to the folder
    assert "duplicate group" in chromium.find_element(By.ID, "tip-group").text
    ActionChains(chromium).click().perform()
    listed = wait_for(lambda: chromium.find_elements(By.CSS_SELECTOR, "#members li"))
    assert len(listed) == 4 and HOSTILE_NAME in " ".join(item.text for item in listed)
    assert chromium.execute_script("return window.dedupMap.selected().length") == 4
    chromium.find_element(By.TAG_NAME, "body").send_keys("0")  # the whole map, the group still listed
    chromium.save_screenshot(str(tmp_path / "map.png"))
    assert_no_alert(chromium)
