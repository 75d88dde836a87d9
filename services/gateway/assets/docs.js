// The public API's page: Swagger UI over the gateway's own /openapi.json. Nothing is
// fetched from anywhere else (no validator badge); a token given to "Authorize" lives in
// this page's memory only (not persisted), and calls go to this same origin.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#api",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    tryItOutEnabled: false,
    withCredentials: false,
  });
});
