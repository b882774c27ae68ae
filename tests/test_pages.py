"""The pages for students, in headless Chromium through the real Hub: the
list of one's submissions goes from waiting to graded without a reload, a
submission's page shows what otter marks visible and nothing hidden, a
refused notebook is listed with its reason, and another student's
submission is not found. Screenshots of each page go to var/screenshots/
(not committed)."""

import json
import uuid

import pytest

from conftest import PREFIX, ROOT, SUBMISSIONS
from hub_fixtures import run_hub

SHOTS = ROOT / "var" / "screenshots"


def slow_notebook(seconds):
    """lab01-perfect, unique, with a last cell that takes seconds to run, so
    that the page is first seen while it waits or is being graded."""
    nb = json.loads((SUBMISSIONS / "lab01-perfect.ipynb").read_text())
    nb["metadata"]["pytest_submission"] = uuid.uuid4().hex
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "slow", "metadata": {}, "outputs": [],
                        "source": f"import time\ntime.sleep({seconds})"})
    return nb


@pytest.fixture(scope="module")
def hub(binary, emulator, tmp_path_factory):
    """A Hub of this module's own: the session's is taken down by the Hub
    tests' outage test."""
    yield from run_hub(binary, emulator, tmp_path_factory.mktemp("pages-hub"), "external")


def shot(driver, name, width=1280):
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(width, 900)
    driver.save_screenshot(str(SHOTS / f"{name}-{width}.png"))


def test_student_pages_in_chromium(hub, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    token = hub.token("student2")
    resp = hub.request("POST", PREFIX, token=token, headers={"Content-Type": "application/json"},
                       data=json.dumps({"nb": slow_notebook(25)}))
    assert resp.status_code == 202, resp.text
    sub = resp.json()
    refused_nb = slow_notebook(0)
    refused_nb["metadata"]["otter_service"]["assignment"] = "lab99"
    resp = hub.request("POST", PREFIX, token=token, headers={"Content-Type": "application/json"}, data=json.dumps({"nb": refused_nb}))
    assert resp.status_code == 422, resp.text

    # Signed in to the Hub, the student opens the service from the Hub's Services menu.
    hub.browser_login(chromium, "student2")
    chromium.find_element(By.LINK_TEXT, "Services").click()
    item = chromium.find_element(By.CSS_SELECTOR, f'a.dropdown-item[href="{PREFIX}"]')
    WebDriverWait(chromium, 10).until(lambda d: item.is_displayed())
    assert item.text == "otter_grade", item.text
    item.click()
    WebDriverWait(chromium, 30).until(lambda d: d.find_elements(By.TAG_NAME, "h1") and d.find_element(By.TAG_NAME, "h1").text == "My submissions")
    # live.js replaces the page's content every few seconds while the
    # submission waits, so elements are read in one script (an element
    # found before a replacement is stale after it).
    def text_of(css, closest=None):
        return chromium.execute_script(
            "var e = document.querySelector(arguments[0]); if (e && arguments[1]) { e = e.closest(arguments[1]); }"
            " return e ? e.innerText : '';", css, closest)
    row_css = f'a[href="{sub["status_url"]}"]'
    first = text_of(row_css, "tr")
    assert "Waiting to be graded" in first or "Being graded" in first, first
    refused = text_of(".refused")
    assert "lab99" in refused, refused
    shot(chromium, "list-waiting")
    shot(chromium, "list-waiting", width=320)

    # It becomes graded in place: the page is never reloaded.
    chromium.execute_script("window.sameDocument = 'yes'")
    WebDriverWait(chromium, 300, poll_frequency=0.5).until(lambda d: "Graded" in text_of(row_css, "tr"))
    assert chromium.execute_script("return window.sameDocument") == "yes", "the page was reloaded"
    graded = text_of(row_css, "tr")
    assert "100%" in graded, graded
    shot(chromium, "list-graded")

    # The submission's page: visible feedback, hidden results withheld.
    chromium.find_element(By.CSS_SELECTOR, row_css).click()
    WebDriverWait(chromium, 30).until(lambda d: "submissions/" in d.current_url and d.find_elements(By.CLASS_NAME, "facts"))
    page = chromium.find_element(By.ID, "main").text
    assert "Graded" in page and "100%" in page, page
    assert "Public Tests" in page, page  # otter's visible summary of the public cases
    # lab01's questions are otter's default "hidden" (their cases are all
    # public, so the summary above repeats them): their scores are withheld.
    # (service/httpapi's TestPages checks that a hidden case's output never shows.)
    status = hub.request("GET", sub["status_url"], token=hub.token("teacher")).json()  # staff see everything
    hidden = [q for q in status["questions"] if q["visibility"] != "visible"]
    assert hidden, status["questions"]
    assert "withheld" in page, page
    cells = [td.text for td in chromium.find_elements(By.CSS_SELECTOR, "table.questions tbody td:first-of-type")]
    assert cells and all(c == "withheld" for c in cells), cells
    shot(chromium, "submission")

    # Another student's submission is not found.
    other = hub.request("POST", PREFIX, token=hub.token("student1"), headers={"Content-Type": "application/json"},
                        data=json.dumps({"nb": slow_notebook(0)}))
    assert other.status_code == 202, other.text
    chromium.get(hub.url + other.json()["status_url"])
    assert "Not Found" in chromium.find_element(By.TAG_NAME, "h1").text, chromium.page_source[:1000]


def test_staff_overview_in_chromium(hub, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    resp = hub.request("POST", PREFIX, token=hub.token("student3"), headers={"Content-Type": "application/json"},
                       data=json.dumps({"nb": slow_notebook(0)}))
    assert resp.status_code == 202, resp.text
    hub.wait_done(resp.json()["status_url"], hub.token("student3"))
    # A student may not see it.
    assert hub.request("GET", PREFIX + "api/overview", token=hub.token("student3")).status_code == 403

    hub.browser_login(chromium, "teacher")
    chromium.get(hub.url + PREFIX + "staff?course=8x&assignment=lab01")
    WebDriverWait(chromium, 30).until(lambda d: d.find_elements(By.TAG_NAME, "h1") and "Course overview" in d.find_element(By.TAG_NAME, "h1").text)
    assert chromium.find_elements(By.CSS_SELECTOR, "svg.hist rect"), chromium.page_source[:2000]
    assert "graded student" in chromium.find_element(By.CLASS_NAME, "summary").text
    shot(chromium, "staff-overview")
    shot(chromium, "staff-overview", width=320)
