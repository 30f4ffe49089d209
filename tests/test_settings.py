"""Settings: defaults, environment, .env, and errors that name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.settings import SettingsError, load_settings


def test_defaults_match_the_old_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAX_NEW_TOKENS", "TEMPERATURE", "TOP_P"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(env_file=None)
    assert (settings.max_new_tokens, settings.temperature, settings.top_p) == (128, 0.7, 0.9)


def test_environment_overrides_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("MAX_NEW_TOKENS=64\nTEMPERATURE=0.2\nHF_TOKEN=unused-at-run-time\n")
    monkeypatch.setenv("TEMPERATURE", "0")
    settings = load_settings(env_file=env)
    assert (settings.max_new_tokens, settings.temperature) == (64, 0.0)


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOP_P", "1.5")
    with pytest.raises(SettingsError, match=r"^bad setting: TOP_P: Input should be less than or equal to 1$"):
        load_settings(env_file=None)


def test_prompt_template_needs_the_question_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPT_TEMPLATE", "Answer this: {q}")
    with pytest.raises(SettingsError, match="PROMPT_TEMPLATE: Value error, PROMPT_TEMPLATE must contain"):
        load_settings(env_file=None)


def test_settings_are_frozen() -> None:
    settings = load_settings(env_file=None)
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"auth_jwt_secret": "short"}, "AUTH_JWT_SECRET: Value error, must be at least 32 bytes"),
    ({"auth_jwks_url": "file:///etc/keys"}, "AUTH_JWKS_URL: Value error, must be an http(s) URL"),
    ({"auth_jwks_url": "https://idp/jwks", "auth_jwt_secret": "s" * 32}, "set AUTH_JWKS_URL (RS256/ES256) or"),
    ({"database_url": "mysql://x"}, "DATABASE_URL: Value error, must be sqlite:///PATH, postgresql://... or none"),
    ({"retrieval_k": 12}, "RETRIEVAL_K (12) is above RETRIEVAL_K_MAX (10)"),
    ({"auth_client_id": "page"}, "set AUTH_AUTHORIZE_URL, AUTH_TOKEN_URL and AUTH_CLIENT_ID together, or none"),
    ({"auth_authorize_url": "javascript:alert(1)"}, "AUTH_AUTHORIZE_URL: Value error, must be an http(s) URL"),
    ({"auth_authorize_url": "https://idp/a", "auth_token_url": "https://idp/t", "auth_client_id": "page"},
     "page sign-in needs the tokens checked: set AUTH_JWKS_URL"),
    ({"log_format": "xml"}, "LOG_FORMAT: Input should be 'text' or 'json'"),
    ({"auth_jwks_url": "https://idp/jwks", "auth_issuer": "https://idp"},
     "AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE"),
])
def test_auth_database_and_retrieval_settings_are_checked(overrides: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(env_file=None, **overrides)
