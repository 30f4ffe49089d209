"""Service settings: one frozen, typed object built once at start-up.

Values come from the environment, then from an optional ``.env`` file in the
working directory (the old service's variables keep their meaning). Nothing
here runs at import time: :func:`load_settings` is called by the app's
lifespan or by ``python -m server``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.prompt import DEFAULT_GROUNDED_TEMPLATE, DEFAULT_TEMPLATE, check_grounded_template, check_template


class SettingsError(Exception):
    """A setting is missing or out of range; the message names the variable."""


class Settings(BaseSettings):
    """Every knob of the serving process. Environment names are the field names, upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", frozen=True, extra="ignore")

    # Serving directory written by `python -m export` (ONNX files, tokenizer, manifest).
    model_dir: Path = Path("models/flan-t5-small-int8")
    # Name reported by /health and /chat/; empty means the manifest's source model id.
    model_name: str = ""
    # Default number of new tokens per answer, and the most a request may ask for.
    max_new_tokens: int = Field(128, ge=1, le=2048)
    max_new_tokens_limit: int = Field(512, ge=1, le=2048)
    # Default sampling: temperature 0 means greedy; top_p is the nucleus mass kept.
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    # Longest question, in tokens after the prompt template (T5 was trained on 512).
    max_input_tokens: int = Field(512, ge=8, le=4096)
    # Longest question in characters, checked before tokenizing.
    max_question_chars: int = Field(4000, ge=1, le=100_000)
    # ONNX Runtime intra-op threads; 0 means one per usable CPU (affinity and cgroup quota).
    num_threads: int = Field(0, ge=0, le=256)
    # Continuous batching: most sequences decoded together, and how long an idle
    # batcher waits for company before starting (milliseconds).
    max_batch_size: int = Field(16, ge=1, le=256)
    batch_wait_ms: float = Field(2.0, ge=0.0, le=1000.0)
    # Requests allowed to wait for a batch slot; past this the server answers 503.
    max_queue: int = Field(64, ge=1, le=100_000)
    # Longest a request may take from arrival to answer, in seconds (504 beyond).
    request_timeout: float = Field(60.0, gt=0.0, le=3600.0)
    # Largest request body in bytes (413 beyond).
    max_body_bytes: int = Field(65_536, ge=256, le=16 * 1024 * 1024)
    # How long an idle kept-alive connection stays open. Must outlast every client's and proxy's own
    # idle timeout (the ALB's is 75 s in deploy/): whichever side closes second may have sent a request
    # into a connection the other has just closed, and that request is lost (see tests/test_keepalive.py).
    keep_alive_seconds: int = Field(90, ge=1, le=4000)
    # After SIGTERM, how long requests in flight may take to finish; match ECS's stopTimeout.
    drain_seconds: float = Field(30.0, ge=0.0, le=120.0)
    # Bearer API keys, comma-separated, and/or a file of keys one per line; none means open.
    api_keys: str = Field("", repr=False)
    api_keys_file: Path | None = None
    # JWT bearer tokens: a JWKS URL (RS256/ES256, e.g. an Amazon Cognito user pool's) or an HS256
    # secret; issuer and audience are checked in both modes when set. Neither: no tokens.
    auth_jwks_url: str = ""
    auth_jwt_secret: str = Field("", repr=False)
    auth_issuer: str = ""
    auth_audience: str = ""
    # Sign-in on the chat page (OAuth 2.0 authorization code with PKCE, e.g. a Cognito hosted domain's
    # /oauth2/authorize and /oauth2/token, and its app client): all three, or none for no sign-in button.
    auth_authorize_url: str = ""
    auth_token_url: str = ""
    auth_client_id: str = ""
    # Requests per user per minute (each task counts its own); 0 turns the limit off.
    rate_limit_per_minute: int = Field(0, ge=0, le=1_000_000)
    # Origins allowed by CORS, comma-separated ("*" for any); empty turns CORS off.
    cors_origins: str = ""
    # Put the question text in the request log line (off: questions may be private).
    log_questions: bool = False
    # Text around the question; must hold `{question}` once.
    prompt_template: str = DEFAULT_TEMPLATE
    # Text around the retrieved passages and the question, for grounded answers;
    # must hold `{context}` and `{question}` once each.
    grounded_template: str = DEFAULT_GROUNDED_TEMPLATE
    # Passages retrieved per grounded question by default, and the most a request may ask for.
    retrieval_k: int = Field(3, ge=1, le=50)
    retrieval_k_max: int = Field(10, ge=1, le=50)
    # ONNX Runtime threads of the query embedder (the generator keeps the rest of the cores).
    embed_threads: int = Field(1, ge=0, le=64)
    # Most texts one /v1/embeddings request may send.
    max_embedding_inputs: int = Field(64, ge=1, le=2048)
    # Check every file's sha256 against the manifest at start-up.
    verify_checksums: bool = True
    # Conversations: sqlite:///PATH (default, relative to the working directory), postgresql://...,
    # or "none" for a stateless server without history.
    database_url: str = Field("sqlite:///data/iscoolgpt.db", repr=False)
    # Earlier turns read back as a conversation's context (they share the prompt's token budget).
    history_turns: int = Field(8, ge=0, le=100)
    # Most conversations one GET /conversations page returns.
    max_page_size: int = Field(100, ge=1, le=1000)
    # Where `python -m server` listens.
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    log_level: str = "info"
    # "text" for people, "json" for log services: one JSON object per line (CloudWatch metric filters
    # read a request line's status and latency_ms).
    log_format: Literal["text", "json"] = "text"

    @field_validator("api_keys_file")
    @classmethod
    def _keys_file_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @field_validator("prompt_template")
    @classmethod
    def _template_has_question(cls, value: str) -> str:
        return check_template(value)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value != "none" and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must be sqlite:///PATH, postgresql://... or none")
        return value

    @field_validator("grounded_template")
    @classmethod
    def _grounded_has_context_and_question(cls, value: str) -> str:
        return check_grounded_template(value)

    @field_validator("auth_jwt_secret")
    @classmethod
    def _secret_long_enough(cls, value: str) -> str:
        if value and len(value.encode()) < 32:
            raise ValueError("must be at least 32 bytes (HS256 keys shorter than the hash are guessable)")
        return value

    @field_validator("auth_jwks_url", "auth_authorize_url", "auth_token_url")
    @classmethod
    def _auth_urls(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _one_token_mode(self) -> Settings:
        if self.auth_jwks_url and self.auth_jwt_secret:
            raise ValueError("set AUTH_JWKS_URL (RS256/ES256) or AUTH_JWT_SECRET (HS256), not both")
        return self

    @model_validator(mode="after")
    def _key_set_names_its_tokens(self) -> Settings:
        # A key set (a Cognito pool's, say) signs for every client and purpose of its provider: without
        # both, a token minted for another application would be accepted here.
        if self.auth_jwks_url and not (self.auth_issuer and self.auth_audience):
            raise ValueError("AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE: the key set signs for other "
                             "applications too")
        return self

    @model_validator(mode="after")
    def _sign_in_whole(self) -> Settings:
        parts = (self.auth_authorize_url, self.auth_token_url, self.auth_client_id)
        if any(parts) and not all(parts):
            raise ValueError("set AUTH_AUTHORIZE_URL, AUTH_TOKEN_URL and AUTH_CLIENT_ID together, or none")
        if all(parts) and not (self.auth_jwks_url or self.auth_jwt_secret):
            raise ValueError("page sign-in needs the tokens checked: set AUTH_JWKS_URL (or AUTH_JWT_SECRET)")
        return self

    @model_validator(mode="after")
    def _k_within_limit(self) -> Settings:
        if self.retrieval_k > self.retrieval_k_max:
            raise ValueError(f"RETRIEVAL_K ({self.retrieval_k}) is above RETRIEVAL_K_MAX ({self.retrieval_k_max})")
        return self


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Build the settings once; raise :class:`SettingsError` naming each bad variable."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"bad setting: {problems}") from None
