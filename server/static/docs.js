// Swagger UI from this server's own copy (no CDN), reading this server's /openapi.json.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
