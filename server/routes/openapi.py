"""The OpenAPI description served at /openapi.json, built from the pydantic models."""

from __future__ import annotations

from typing import Any

from server.routes.openai_api import CompletionRequest
from server.routes.search_api import EmbeddingRequest
from server.schemas import ChatRequest, ChatResponse, SearchRequest
from server.settings import Settings

_ERROR = {
    "type": "object",
    "required": ["error", "error_type"],
    "properties": {"error": {"type": "string"}, "error_type": {"type": "string"}},
}
_OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type", "code"]}},
}
_SSE_EVENT = {  # one Server-Sent Event: a name (token, done, error; none on /v1) and JSON data
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
}
_SEARCH_RESULTS = {  # each result is a passage as an answer's sources show it
    "type": "object",
    "required": ["results"],
    "properties": {"results": {"type": "array", "items": {"$ref": "#/components/schemas/Source"}}},
}
_FILTERS = {
    "type": "object", "required": ["service", "source"],
    "properties": {name: {"type": "object", "additionalProperties": {"type": "integer"}}
                   for name in ("service", "source")},
}
_CONVERSATION_SUMMARY = {
    "type": "object", "required": ["id", "title", "created_at", "updated_at", "turns"],
    "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "created_at": {"type": "string"},
                   "updated_at": {"type": "string"}, "turns": {"type": "integer"}},
}
_CONVERSATION_PAGE = {
    "type": "object", "required": ["conversations", "next_cursor"],
    "properties": {"conversations": {"type": "array", "items": _CONVERSATION_SUMMARY},
                   "next_cursor": {"type": ["string", "null"]}},
}
_TURN = {"type": "object", "required": ["question", "answer", "sources", "usage", "finish_reason", "created_at"]}
_CONVERSATION = {
    "type": "object", "required": ["id", "title", "created_at", "updated_at", "turns"],
    "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "created_at": {"type": "string"},
                   "updated_at": {"type": "string"}, "turns": {"type": "array", "items": _TURN}},
}


def _conversation_errors() -> dict[str, Any]:
    return {"401": _error("Missing or invalid credentials"),
            "403": _error("Listing needs sign-in (no keys or tokens configured)"),
            "404": _error("No such conversation for this caller"),
            "422": _error("Bad limit or cursor"), "429": _error("Rate limit reached"),
            "503": _error("The conversation database is unavailable; see Retry-After")}


_HEALTH = {
    "type": "object",
    "required": ["status", "model"],
    "properties": {"status": {"type": "string", "enum": ["ok", "draining"]}, "model": {"type": "string"},
                   "database": {"type": "string", "enum": ["ok", "unavailable", "off"]}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


def openapi_schema(settings: Settings) -> dict[str, Any]:
    """OpenAPI 3.1 for /health, /chat/ and /metrics, with this server's limits filled in."""
    request = ChatRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    request["properties"]["question"]["maxLength"] = settings.max_question_chars
    request["properties"]["max_new_tokens"]["anyOf"][0]["maximum"] = settings.max_new_tokens_limit
    response = ChatResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    request["properties"]["k"]["anyOf"][0]["maximum"] = settings.retrieval_k_max
    completion = CompletionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    search = SearchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    search["properties"]["query"]["maxLength"] = settings.max_question_chars
    search["properties"]["k"]["anyOf"][0]["maximum"] = settings.retrieval_k_max
    embedding = EmbeddingRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    components = {"Error": _ERROR, "Health": _HEALTH, "ChatRequest": request, "OpenAIError": _OPENAI_ERROR,
                  "ChatResponse": response, "CompletionRequest": completion, "SearchRequest": search,
                  "SearchResults": _SEARCH_RESULTS, "EmbeddingRequest": embedding,
                  **request.pop("$defs", {}), **search.pop("$defs", {}), **response.pop("$defs", {}),
                  **completion.pop("$defs", {})}
    chat: dict[str, Any] = {
        "summary": "Answer a cloud-computing question",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ChatRequest"}}}},
        "responses": {
            "200": {"description": "The answer; with \"stream\": true, Server-Sent Events (token, done, error)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatResponse"}},
                                "text/event-stream": {"schema": _SSE_EVENT}}},
            "401": _error("Missing or invalid credentials"),
            "404": _error("Unknown conversation (or another user's), or history is off"),
            "429": _error("Rate limit reached; see Retry-After"),
            "413": _error("Body too large"),
            "415": _error("Not JSON"),
            "422": _error("Invalid question or parameters"),
            "500": _error("Generation failed"),
            "503": _error("Queue full or shutting down; see Retry-After"),
            "504": _error("No answer within the request timeout"),
        },
    }
    schema: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "IsCoolGPT", "version": "0.2.0",
                 "description": "FLAN-T5 cloud-computing answers from ONNX Runtime int8 on the CPU."},
        "paths": {
            "/health": {"get": {"summary": "Load balancer probe", "responses": {
                "200": _json({"$ref": "#/components/schemas/Health"}, "Model loaded"),
                "503": _json({"$ref": "#/components/schemas/Health"}, "Draining")}}},
            "/auth/config": {"get": {
                "summary": "How the chat page signs in (OAuth 2.0 code flow with PKCE), or null",
                "responses": {"200": _json({"type": "object", "required": ["sign_in"], "properties": {
                    "sign_in": {"type": ["object", "null"]}}}, "Sign-in settings")}}},
            "/chat/": {"post": chat},
            "/v1/chat/completions": {"post": {
                "summary": "OpenAI-compatible chat completion (plain or streamed)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/CompletionRequest"}}}},
                "responses": {
                    "200": {"description": "chat.completion, or chat.completion.chunk events ending in [DONE]",
                            "content": {"application/json": {"schema": {"type": "object"}},
                                        "text/event-stream": {"schema": _SSE_EVENT}}},
                    **{code: _json({"$ref": "#/components/schemas/OpenAIError"}, text) for code, text in (
                        ("401", "Missing or invalid credentials"), ("413", "Body too large"), ("415", "Not JSON"),
                        ("429", "Rate limit reached"),
                        ("422", "Invalid request"), ("500", "Generation failed"),
                        ("503", "Queue full or shutting down"), ("504", "Request timeout"))}}}},
            "/v1/models": {"get": {"summary": "OpenAI-compatible model list", "responses": {
                **{code: _json({"$ref": "#/components/schemas/OpenAIError"}, text) for code, text in (
                    ("401", "Missing or invalid credentials"), ("429", "Rate limit reached"))},
                "200": _json({"type": "object"}, "The served generator, and the embedder if there is one")}}},
            "/search": {"post": {
                "summary": "Passages of the knowledge base for a query (dense + BM25 fused, optionally filtered)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/SearchRequest"}}}},
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/SearchResults"}, "Passages, best first"),
                    "401": _error("Missing or invalid credentials"), "404": _error("No knowledge base"),
                    "429": _error("Rate limit reached"), "503": _error("Key set unreachable"),
                    "413": _error("Body too large"), "415": _error("Not JSON"),
                    "422": _error("Invalid query, k or filter")}}},
            "/search/filters": {"get": {
                "summary": "What a search filter may name: the services and sources, each with its passage count",
                "responses": {
                    "200": _json(_FILTERS, "Service ids and source names, each with its passages"),
                    "401": _error("Missing or invalid credentials"), "404": _error("No knowledge base"),
                    "429": _error("Rate limit reached"), "503": _error("Key set unreachable")}}},
            "/v1/embeddings": {"post": {
                "summary": "OpenAI-compatible embeddings of one text or a list (unit length)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/EmbeddingRequest"}}}},
                "responses": {
                    "200": _json({"type": "object", "required": ["object", "data", "model", "usage"]},
                                 "A list of embeddings"),
                    **{code: _json({"$ref": "#/components/schemas/OpenAIError"}, text) for code, text in (
                        ("401", "Missing or invalid credentials"), ("404", "No knowledge base"),
                        ("429", "Rate limit reached"), ("503", "Key set unreachable"),
                        ("413", "Body too large"), ("415", "Not JSON"), ("422", "Invalid request"))}}}},
            "/conversations": {"get": {
                "summary": "The caller's conversations, most recently updated first",
                "parameters": [
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": settings.max_page_size}},
                    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}}],
                "responses": {"200": _json(_CONVERSATION_PAGE, "A page of conversations"), **_conversation_errors()}}},
            "/conversations/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {"summary": "One conversation with its turns, oldest first", "responses": {
                    "200": _json(_CONVERSATION, "The conversation"), **_conversation_errors()}},
                "delete": {"summary": "Delete a conversation and its turns", "responses": {
                    "204": {"description": "Deleted"}, **_conversation_errors()}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
    if settings.api_keys or settings.api_keys_file or settings.auth_jwks_url or settings.auth_jwt_secret:
        for path, item in schema["paths"].items():  # every route that answers, searches, embeds or remembers
            if path.startswith(("/chat", "/v1/", "/search", "/conversations")):
                for method in ("get", "post", "delete"):
                    if method in item:
                        item[method]["security"] = [{"bearer": []}]
    return schema
