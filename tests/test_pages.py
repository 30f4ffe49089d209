"""The docs page and the chat page: served by the app itself, nothing from a CDN; the chat page in Chromium."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

SCREENSHOT = ROOT / "tests" / "artifacts" / "chat-page.png"


def test_docs_page_loads_swagger_ui_from_this_server(client: httpx.Client) -> None:
    html = client.get("/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets == ["/static/swagger/swagger-ui.css", "/static/swagger/swagger-ui-bundle.js", "/static/docs.js"]
    assert all(client.get(a).status_code == 200 for a in assets)


def test_no_page_refers_to_another_host(client: httpx.Client) -> None:
    for path in ("/", "/docs", "/static/chat.js", "/static/docs.js"):
        assert not re.search(r"https?://", client.get(path).text), path


@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"),
                    reason="needs Debian's chromium (.ci/run installs it; in CI its absence fails)")
def test_chat_page_streams_an_answer_in_chromium(live_server: tuple[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            page.goto(live_server[0] + "/")
            page.fill("#question", "What is AWS EC2?")
            page.click("#send")
            page.wait_for_selector("#log li.reply .meta", timeout=30_000)
            answer = page.inner_text("#log li.reply .answer")
            meta = page.inner_text("#log li.reply .meta")
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert answer == "Amazon EC2 provides resizable virtual servers in the AWS cloud."
    assert re.fullmatch(r"30 tokens · first piece \d+\.\d\d s · total \d+\.\d\d s · eos", meta)
