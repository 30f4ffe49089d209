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
    for path in ("/", "/docs", "/static/chat.js", "/static/sources.js", "/static/docs.js"):
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


KINDS = ("API reference", "CLI example", "CDK guide", "CloudFormation", "Azure CLI", "Kubernetes API", "Your docs")
SOURCE_ENTRIES = """items => items.map(i => ({
    kind: i.querySelector('.kind')?.textContent ?? null, service: i.querySelector('.service')?.textContent ?? null,
    title: i.querySelector('.title').textContent, href: i.querySelector('a')?.href ?? null,
    passages: i.querySelector('details summary')?.textContent ?? null,
    command: i.querySelector('pre > code')?.textContent ?? null}))"""


@needs_chromium
def test_chat_page_shows_the_sources_under_a_grounded_answer(grounded: str, page: Page) -> None:
    answer, _ = ask(page, grounded, "Where do I keep configuration values?")
    entries = page.eval_on_selector_all("#log li.reply .sources > li", SOURCE_ENTRIES)
    page.click("#log li.reply .sources > li:first-child details summary")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert answer == "Parameter Store keeps configuration values and secrets as named parameters."
    assert entries[0] == {"kind": "Your docs", "service": None, "title": "Parameter Store", "href": None,
                          "passages": "1 passage", "command": None}  # a --docs file: a title, no link
    assert page.inner_text("#log li.reply .sources > li:first-child .passage").startswith("Parameter Store")
    aws = [e for e in entries[1:] if e["kind"] != "Your docs"]  # the AWS sources of the two services
    assert aws and all(e["kind"] in KINDS and e["service"] in ("sqs", "ecr") for e in aws)
    assert all(e["href"].startswith("https://docs.aws.amazon.com/") for e in aws)
    assert len({e["title"] for e in entries}) == len(entries)  # one entry per document


@needs_chromium
def test_an_answer_from_a_cli_example_shows_its_command(grounded: str, page: Page) -> None:
    ask(page, grounded, "aws sqs send-message example")
    entries = page.eval_on_selector_all("#log li.reply .sources > li", SOURCE_ENTRIES)
    cli = next(e for e in entries if e["title"] == "aws sqs send-message: To send a message")
    assert cli["kind"] == "CLI example" and cli["service"] == "sqs"
    assert cli["href"] == "https://docs.aws.amazon.com/cli/latest/reference/sqs/send-message.html"
    assert cli["command"].startswith("aws sqs send-message --queue-url https://sqs.")


# What a hostile or mixed knowledge base may send, rendered by the page's own sources.js: two passages of
# one document, a CLI example with a javascript: URL and markup in its text, and a turn stored before
# sources carried their corpus, service, text and command.
CRAFTED = [
    {"id": "sqs/SendMessageBatch#0", "title": "Amazon Simple Queue Service: SendMessageBatch",
     "url": "https://docs.aws.amazon.com/goto/WebAPI/sqs-2012-11-05/SendMessageBatch", "score": 0.03,
     "source": "botocore", "service": "sqs", "text": "Delivers up to ten messages to the queue.", "command": None},
    {"id": "awscli/sqs/send-message#0", "title": "aws sqs send-message", "url": "javascript:window.pwned=1",
     "score": 0.02, "source": "awscli", "service": "sqs",
     "text": '<script>window.pwned=1</script><img src=x onerror="window.pwned=1">',
     "command": "aws sqs send-message --queue-url https://sqs.us-east-1.amazonaws.com/123456789012/q "
                "--message-body hi"},
    {"id": "sqs/SendMessageBatch#2", "title": "Amazon Simple Queue Service: SendMessageBatch",
     "url": "https://docs.aws.amazon.com/goto/WebAPI/sqs-2012-11-05/SendMessageBatch", "score": 0.01,
     "source": "botocore", "service": "sqs", "text": "Each message can be up to 256 KiB.", "command": None},
    {"id": "parameter-store.md#0", "title": "Parameter Store", "url": None, "score": 0.005},
]


@needs_chromium
def test_sources_are_grouped_labelled_and_inert(live_server: tuple[str, Path], page: Page) -> None:
    page.goto(live_server[0] + "/")
    page.evaluate("""found => {
        const item = document.createElement('li');
        item.className = 'reply';
        item.append(sourceList(found));
        document.getElementById('log').append(item);
    }""", CRAFTED)
    entries = page.eval_on_selector_all("#log .sources > li", SOURCE_ENTRIES)
    page.click("#log .sources > li:nth-child(2) details summary")
    page.click("#log .sources > li:nth-child(1) details summary")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT.with_name("sources.png")), full_page=True)
    batch = "https://docs.aws.amazon.com/goto/WebAPI/sqs-2012-11-05/SendMessageBatch"
    assert entries == [
        {"kind": "API reference", "service": "sqs", "title": "Amazon Simple Queue Service: SendMessageBatch",
         "href": batch, "passages": "2 passages", "command": None},
        {"kind": "CLI example", "service": "sqs", "title": "aws sqs send-message", "href": None,
         "passages": "1 passage", "command": CRAFTED[1]["command"]},
        {"kind": None, "service": None, "title": "Parameter Store", "href": None, "passages": None, "command": None},
    ]
    assert page.eval_on_selector_all("#log .sources > li:nth-child(2) .passage", "ps => ps.map(p => p.innerText)") \
        == [CRAFTED[1]["text"]]  # shown as text: no element was made of it
    assert page.evaluate("[document.querySelectorAll('#log script, #log img').length, window.pwned]") == [0, None]


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


@needs_chromium
def test_without_sign_in_the_sidebar_lists_the_conversations_this_browser_started(
        live_server: tuple[str, Path], page: Page) -> None:
    url = live_server[0]  # no keys or tokens: GET /conversations is 403, the page remembers its own
    ask(page, url, "What is AWS EC2?")
    page.click("#new")
    page.fill("#question", "What is Amazon S3?")
    page.click("#send")
    page.wait_for_selector("#log li.reply .meta", timeout=30_000)
    page.reload()
    page.wait_for_function("document.querySelectorAll('#conversations li').length === 2", timeout=10_000)
    listed = page.eval_on_selector_all("#conversations .title", "items => items.map(i => i.innerText)")
    page.click("#conversations li:nth-child(2) .title")  # reopen the first conversation
    page.wait_for_selector("#conversations li:nth-child(2).open", timeout=10_000)
    reopened = page.eval_on_selector_all("#log li.question", "items => items.map(i => i.innerText)")
    page.click("#conversations li:nth-child(1) .delete")
    page.wait_for_function("document.querySelectorAll('#conversations li').length === 1", timeout=10_000)
    page.reload()
    page.wait_for_selector("#conversations li.open", timeout=10_000)
    assert httpx.get(f"{url}/conversations").status_code == 403
    assert listed == ["What is Amazon S3?", "What is AWS EC2?"]
    assert reopened == ["What is AWS EC2?"]
    assert page.eval_on_selector_all("#conversations .title", "items => items.map(i => i.innerText)") \
        == ["What is AWS EC2?"]
    assert len(page.evaluate("JSON.parse(localStorage.getItem('iscoolgpt.conversations'))")) == 1


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
