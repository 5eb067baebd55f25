/* /docs: start Swagger UI on this server's OpenAPI document (a file, not an inline script, for the CSP). */
document.addEventListener("DOMContentLoaded", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    // deep links put a focusable <a href> inside each operation's toggle button (axe-core: nested-interactive)
    deepLinking: false,
    // Swagger UI would otherwise send the spec to validator.swagger.io: nothing leaves this server.
    validatorUrl: null,
  });
  document.body.dataset.ready = "1";
  // The API's title is Swagger UI's <h1>, its tags <h3> and its "Schemas" an <h4>: announce them as level 2
  // (axe-core: heading-order), also those Swagger UI renders later.
  const sections = ".swagger-ui h3.opblock-tag:not([aria-level]), .swagger-ui section.models > h4:not([aria-level])";
  const level = () => document.querySelectorAll(sections).forEach((h) => {
    h.setAttribute("role", "heading");
    h.setAttribute("aria-level", "2");
  });
  new MutationObserver(level).observe(document.getElementById("swagger-ui"), { childList: true, subtree: true });
});
