"""The OpenAPI description served at /openapi.json, built from the pydantic models."""

from __future__ import annotations

from typing import Any

from server.openai_api import CompletionRequest
from server.schemas import ChatRequest, ChatResponse, SearchRequest
from server.search_api import EmbeddingRequest
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
_SEARCH_RESULTS = {
    "type": "object",
    "required": ["results"],
    "properties": {"results": {"type": "array", "items": {
        "type": "object", "required": ["id", "title", "text", "url", "score"],
        "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "text": {"type": "string"},
                       "url": {"type": ["string", "null"]}, "score": {"type": "number"}}}}},
}
_HEALTH = {
    "type": "object",
    "required": ["status", "model"],
    "properties": {"status": {"type": "string", "enum": ["ok", "draining"]}, "model": {"type": "string"}},
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
                  **response.pop("$defs", {}), **completion.pop("$defs", {})}
    chat: dict[str, Any] = {
        "summary": "Answer a cloud-computing question",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ChatRequest"}}}},
        "responses": {
            "200": {"description": "The answer; with \"stream\": true, Server-Sent Events (token, done, error)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatResponse"}},
                                "text/event-stream": {"schema": _SSE_EVENT}}},
            "401": _error("Missing or invalid API key"),
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
                        ("401", "Missing or invalid API key"), ("413", "Body too large"), ("415", "Not JSON"),
                        ("422", "Invalid request"), ("500", "Generation failed"),
                        ("503", "Queue full or shutting down"), ("504", "Request timeout"))}}}},
            "/v1/models": {"get": {"summary": "OpenAI-compatible model list", "responses": {
                "200": _json({"type": "object"}, "The served generator, and the embedder if there is one")}}},
            "/search": {"post": {
                "summary": "Passages of the knowledge base for a query (dense + BM25, fused by reciprocal rank)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/SearchRequest"}}}},
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/SearchResults"}, "Passages, best first"),
                    "401": _error("Missing or invalid API key"), "404": _error("No knowledge base"),
                    "413": _error("Body too large"), "415": _error("Not JSON"),
                    "422": _error("Invalid query or k")}}},
            "/v1/embeddings": {"post": {
                "summary": "OpenAI-compatible embeddings of one text or a list (unit length)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/EmbeddingRequest"}}}},
                "responses": {
                    "200": _json({"type": "object", "required": ["object", "data", "model", "usage"]},
                                 "A list of embeddings"),
                    **{code: _json({"$ref": "#/components/schemas/OpenAIError"}, text) for code, text in (
                        ("401", "Missing or invalid API key"), ("404", "No knowledge base"),
                        ("413", "Body too large"), ("415", "Not JSON"), ("422", "Invalid request"))}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
    if settings.api_keys or settings.api_keys_file:  # every route that answers, searches or embeds
        for path in ("/chat/", "/v1/chat/completions", "/search", "/v1/embeddings"):
            schema["paths"][path]["post"]["security"] = [{"bearer": []}]
    return schema
