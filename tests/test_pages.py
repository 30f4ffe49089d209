"""The docs page and the chat page: served by the app itself, nothing from a CDN; the chat page in Chromium."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import ROOT, serve
from tests.idp import IdentityProvider

if TYPE_CHECKING:
    from playwright.sync_api import Page

SCREENSHOT = ROOT / "tests" / "artifacts" / "chat-page.png"


def test_docs_page_loads_swagger_ui_from_this_server(client: httpx.Client) -> None:
    html = client.get("/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets == ["/static/swagger/swagger-ui.css", "/static/swagger/swagger-ui-bundle.js", "/static/docs.js"]
    assert all(client.get(a).status_code == 200 for a in assets)


def test_no_page_refers_to_another_host(client: httpx.Client) -> None:
    for path in ("/", "/docs", "/static/chat.js", "/static/docs.js"):
        assert not re.search(r"https?://", client.get(path).text), path


needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"),
                                    reason="needs Debian's chromium (.ci/run installs it; in CI its absence fails)")


@pytest.fixture
def page() -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            yield browser.new_page()
        finally:
            browser.close()


def ask(page: Page, url: str, question: str) -> tuple[str, str]:
    """Ask on the chat page; the reply's answer and meta line once it is done."""
    page.goto(url + "/")
    page.fill("#question", question)
    page.click("#send")
    page.wait_for_selector("#log li.reply .meta", timeout=30_000)
    return page.inner_text("#log li.reply .answer"), page.inner_text("#log li.reply .meta")


@needs_chromium
def test_chat_page_streams_an_answer_in_chromium(live_server: tuple[str, Path], page: Page) -> None:
    answer, meta = ask(page, live_server[0], "What is AWS EC2?")
    assert answer == "Amazon EC2 provides resizable virtual servers in the AWS cloud."
    assert re.fullmatch(r"30 tokens · first piece \d+\.\d\d s · total \d+\.\d\d s · eos", meta)
    assert page.query_selector("#log li.reply .sources") is None  # no knowledge base, no sources


@needs_chromium
def test_chat_page_shows_the_sources_under_a_grounded_answer(grounded: str, page: Page) -> None:
    answer, _ = ask(page, grounded, "Where do I keep configuration values?")
    titles = page.eval_on_selector_all("#log li.reply .sources li", "items => items.map(i => i.innerText)")
    links = page.eval_on_selector_all("#log li.reply .sources a", "links => links.map(a => a.href)")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert answer == "Parameter Store keeps configuration values and secrets as named parameters."
    assert len(titles) == 3 and titles[0] == "Parameter Store"  # a --docs file: a title, no link
    assert links and all(link.startswith("https://docs.aws.amazon.com/goto/WebAPI/") for link in links)


@pytest.fixture(scope="module")
def keyed(grounded_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(grounded_dir, tmp_path_factory, API_KEYS="page-user:page-key")


@needs_chromium
def test_a_conversation_survives_a_reload_and_can_be_deleted(keyed: str, page: Page) -> None:
    page.goto(keyed + "/")
    page.click("details summary")
    page.fill("#api_key", "page-key")
    page.dispatch_event("#api_key", "change")  # kept in localStorage for the reload
    ask(page, keyed, "How cheap are Spot Instances?")
    page.fill("#question", "Can spare capacity be interrupted?")
    page.click("#send")
    page.wait_for_function("document.querySelectorAll('#log li.reply .meta').length === 2", timeout=30_000)
    page.reload()
    page.wait_for_function("document.querySelectorAll('#log li.question').length === 2", timeout=30_000)
    questions = page.eval_on_selector_all("#log li.question", "items => items.map(i => i.innerText)")
    open_title = page.inner_text("#conversations li.open .title")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT.with_name("conversation-page.png")), full_page=True)
    page.click("#conversations li.open .delete")
    page.wait_for_selector("#conversations li.open", state="detached", timeout=10_000)
    assert questions == ["How cheap are Spot Instances?", "Can spare capacity be interrupted?"]
    assert open_title == "How cheap are Spot Instances?"
    assert page.query_selector_all("#log li") == []


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.close()


@pytest.fixture(scope="module")
def with_sign_in(int8_dir: Path, idp: IdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(int8_dir, tmp_path_factory, **idp.server_env())


def test_auth_config_names_the_provider_only_when_there_is_one(with_sign_in: str, client: httpx.Client,
                                                                 idp: IdentityProvider) -> None:
    sign_in = httpx.get(f"{with_sign_in}/auth/config").json()["sign_in"]
    assert sign_in == {"authorize_url": f"{idp.url}/authorize", "token_url": f"{idp.url}/token",
                       "client_id": "page-client", "scope": "openid email"}
    assert client.get("/auth/config").json() == {"sign_in": None}


@needs_chromium
def test_signing_in_on_the_page_gets_a_token_that_the_api_accepts(with_sign_in: str, idp: IdentityProvider,
                                                                  page: Page) -> None:
    page.goto(with_sign_in + "/")
    page.click("#sign_in")  # to the provider's /authorize and back with a code, exchanged with the verifier
    page.wait_for_function("localStorage.getItem('iscoolgpt.token')", timeout=15_000)
    answer, _ = ask(page, with_sign_in, "What is AWS EC2?")
    page.wait_for_selector("#conversations li.open", timeout=10_000)  # GET /conversations needs a signed-in user
    assert answer == "Amazon EC2 provides resizable virtual servers in the AWS cloud."
    assert "code=" not in page.url and idp.issued == 1
