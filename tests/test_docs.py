"""``--docs DIR``: your own files read into documents, and every kind of bad file skipped with a warning."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from export.knowledge.corpus import html_to_text
from export.knowledge.docs import read_docs


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "setup.md").write_text("Intro line\n\n# Setting up\n\nRun **the** [installer](x.html).\n")
    (tmp_path / "page.html").write_text("<html><title>A page</title><script>x()</script><p>Hello &lt;world&gt;</p>")
    (tmp_path / "notes_on-costs.txt").write_text("Plain   text\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "binary.txt").write_bytes(b"abc\x00def")
    (tmp_path / "latin1.md").write_bytes(b"caf\xe9")
    return tmp_path


def test_docs_take_titles_from_headings_or_file_names(docs: Path) -> None:
    found = {d.id: (d.title, d.text) for d in read_docs(docs)}
    assert found == {"docs/guide/setup.md": ("Setting up", "Intro line\nRun the installer."),
                     "docs/page.html": ("A page", "Hello <world>"),
                     "docs/notes_on-costs.txt": ("notes on costs", "Plain text")}


def test_unreadable_and_binary_files_are_skipped_with_a_warning_naming_them(
        docs: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="iscoolgpt.export"):
        read_docs(docs)
    skipped = sorted(Path(r.args[0]).name for r in caplog.records)  # type: ignore[index, arg-type]
    assert skipped == ["binary.txt", "image.png", "latin1.md"]


def ids_read(root: Path, caplog: pytest.LogCaptureFixture) -> list[str]:
    """The ids of the documents read from ``root``, its warnings captured in ``caplog``."""
    with caplog.at_level(logging.WARNING, logger="iscoolgpt.export"):
        return [d.id for d in read_docs(root)]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def _html_parser_rejects(fragment: str) -> bool:
    try:
        html_to_text(fragment)
    except Exception:
        return True
    return False


@pytest.mark.skipif(not _html_parser_rejects("<![foo bar"), reason="this Python's HTMLParser accepts <![foo bar")
def test_html_that_does_not_parse_is_skipped_with_a_warning_and_the_other_files_are_still_read(
        docs: Path, caplog: pytest.LogCaptureFixture) -> None:
    (docs / "guide" / "broken.html").write_text("<p>Hello</p><![foo bar")
    with caplog.at_level(logging.WARNING, logger="iscoolgpt.export"):
        found = sorted(d.id for d in read_docs(docs))
    assert found == ["docs/guide/setup.md", "docs/notes_on-costs.txt", "docs/page.html"]
    assert [m for m in _warnings(caplog) if "broken.html" in m][0].startswith(
        f"skipping {docs / 'guide' / 'broken.html'}: cannot parse it as html (AssertionError: ")


def test_a_file_name_that_is_not_utf8_is_skipped_with_a_warning_showing_its_bytes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "ok.txt").write_text("Fine")
    try:
        Path(os.fsdecode(os.fsencode(tmp_path / "caf") + b"\xe9-notes.txt")).write_text("Caf\u00e9 notes")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    found = ids_read(tmp_path, caplog)
    assert found == ["docs/ok.txt"]
    assert _warnings(caplog) == [f"skipping {tmp_path}/caf\\xe9-notes.txt: its name is not valid UTF-8"]


def test_a_dangling_symlink_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "ok.txt").write_text("Fine")
    (tmp_path / "gone.md").symlink_to(tmp_path / "nowhere.md")
    found = ids_read(tmp_path, caplog)
    assert found == ["docs/ok.txt"]
    assert _warnings(caplog) == [f"skipping {tmp_path / 'gone.md'}: broken symbolic link"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_skipped_with_a_warning_not_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "ok.txt").write_text("Fine")
    os.mkfifo(tmp_path / "pipe.md")
    found = ids_read(tmp_path, caplog)
    assert found == ["docs/ok.txt"]
    assert _warnings(caplog) == [f"skipping {tmp_path / 'pipe.md'}: not a regular file"]


def test_a_symlinked_directory_is_not_followed_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "ok.txt").write_text("Fine")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    found = ids_read(tmp_path, caplog)
    assert found == ["docs/ok.txt"]
    assert _warnings(caplog) == [f"skipping {tmp_path / 'loop'}: a symbolic link to a directory is not followed"]


def test_markdown_emphasis_loses_its_markers_but_snake_case_keeps_its_underscores(tmp_path: Path) -> None:
    (tmp_path / "vars.md").write_text("Set my_var_name to *one*, **two**, _three_ or __four__, not `x_y_z`.\n")
    assert [d.text for d in read_docs(tmp_path)] == ["Set my_var_name to one, two, three or four, not x_y_z."]


def test_a_link_to_a_file_outside_the_folder_is_not_followed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "credentials").write_text("aws_secret_access_key = hunter2\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").symlink_to(tmp_path / "outside" / "credentials")
    found = ids_read(tmp_path / "docs", caplog)
    assert found == []
    assert _warnings(caplog) == [f"skipping {tmp_path}/docs/notes.txt: a symbolic link to a file outside the "
                                 "folder is not followed"]


def test_a_link_within_the_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("# Page\nSome text.\n")
    (tmp_path / "alias.md").symlink_to(tmp_path / "page.md")
    assert [(d.id, d.text) for d in read_docs(tmp_path)] == [("docs/alias.md", "Some text."),
                                                            ("docs/page.md", "Some text.")]


def test_hostile_markdown_lines_are_read_in_linear_time(tmp_path: Path) -> None:
    lines = ["*a " * 20000, "_a " * 20000, "`a " * 20000, "**a" * 20000]  # each was minutes with a crossing span
    (tmp_path / "hostile.md").write_text("# Hostile\n" + "\n".join(lines) + "\n")
    doc = read_docs(tmp_path)[0]
    assert doc.title == "Hostile" and doc.text.count("a") == 80000
