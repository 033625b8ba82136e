"""Draw a Cypher query's paths in the local Neo4j Browser with headless Chromium and save a screenshot.

    python deploy/browser/screenshot.py --query "MATCH p = … RETURN p" --out docs/browser.png \
        [--password-file .neo4j/password] [--browser-url http://127.0.0.1:7474/browser/]

Logs in, applies cypher/browser.grass with `:style`, runs the query, waits until the graph view shows
the query's nodes, saves the PNG and prints what was drawn as JSON (node and relationship captions).
Exit code 1 when the page did not render the paths. Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
GRASS = ROOT / "cypher" / "browser.grass"


def browser(width: int, height: int) -> WebDriver:
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def run_in_editor(driver: WebDriver, text: str) -> None:
    """Type into Browser's main editor and run it (Monaco closes brackets itself, so type line by line)."""
    editor = WebDriverWait(driver, 30).until(
        ready.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='activeEditor']"))
    )
    editor.click()
    actions = webdriver.ActionChains(driver)
    actions.key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys(Keys.DELETE)
    actions.send_keys(text).perform()
    driver.find_element(By.CSS_SELECTOR, "[data-testid='editor-Run']").click()


def login(driver: WebDriver, url: str, user: str, password: str) -> None:
    driver.get(url)
    wait = WebDriverWait(driver, 60)
    wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid='username']"))).send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "[data-testid='password']").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "[data-testid='connect']").click()
    wait.until(ready.invisibility_of_element_located((By.CSS_SELECTOR, "[data-testid='disconnectedBanner']")))


def drawn(driver: WebDriver) -> dict[str, list[str]]:
    """Captions of the nodes and relationships in the newest graph view."""
    script = """
      const views = [...document.querySelectorAll("svg")].filter(s => s.querySelector("g.node"));
      if (!views.length) return null;
      const svg = views[0];  // frames stack newest first
      const text = (sel) => [...svg.querySelectorAll(sel)].map(g => g.textContent.trim());
      return {nodes: text("g.node"), relationships: text("g.relationship")};
    """
    return driver.execute_script(script) or {"nodes": [], "relationships": []}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--query", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--nodes", type=int, default=2, help="wait until at least this many nodes are drawn")
    parser.add_argument("--user", default="neo4j")
    parser.add_argument("--password-file", type=Path, default=ROOT / ".neo4j" / "password")
    parser.add_argument("--browser-url", default="http://127.0.0.1:7474/browser/")
    parser.add_argument("--size", default="1400x900")
    args = parser.parse_args()

    width, height = (int(part) for part in args.size.split("x"))
    driver = browser(width, height)
    try:
        login(driver, args.browser_url, args.user, args.password_file.read_text().strip())
        run_in_editor(driver, ":style " + " ".join(GRASS.read_text().split()))
        time.sleep(1)
        run_in_editor(driver, args.query)
        try:
            WebDriverWait(driver, 60).until(lambda d: len(drawn(d)["nodes"]) >= args.nodes)
        except TimeoutException:
            driver.save_screenshot(str(args.out))
            print(json.dumps({"rendered": False, **drawn(driver)}))
            return 1
        time.sleep(2)  # the force layout settles
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
        print(json.dumps({"rendered": True, **drawn(driver)}))
        return 0
    except WebDriverException as e:
        print(f"error: the browser failed: {e.msg}", file=sys.stderr)
        return 2
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
