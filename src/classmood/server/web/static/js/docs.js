/* /docs: start Swagger UI on this server's OpenAPI document (a file, not an inline script, for the CSP). */
document.addEventListener("DOMContentLoaded", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // Swagger UI would otherwise send the spec to validator.swagger.io: nothing leaves this server.
    validatorUrl: null,
  });
  document.body.dataset.ready = "1";
});
