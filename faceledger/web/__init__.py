"""The web app: a REST API under /api/v1 and server-rendered pages, over the CLI's services.

Layers (each a small module; nothing here decides policy, the services do):

- `app.create_app(settings)` builds the FastAPI app: middleware (`security`), error
  handlers (`errors`), the services the CLI also uses (`services.Services`), routers.
- `deps`: who is asking (`Actor`, or `require(Role...)` for a role) from a session cookie or an
  `Authorization: Bearer` token; `csrf_checked` for page forms. Every route takes one of
  these, so the role check happens on the server before anything is read.
- `api/`: JSON routes. Bodies are JSON except uploads (multipart). Refusals are JSON
  `{"error": code, "message": text}` with the service's stable codes (`errors`).
- `pages/`: HTML routes rendering `templates/web/*.html` through `faceledger.render`. A page
  template extends `web/base.html` (nav, roles, flash messages) and puts
  `{{ csrf_field(csrf) }}` (from `web/macros.html`) in every form that POSTs; the route
  depends on `csrf_checked`. No inline script or style: the CSP forbids both; put CSS in
  `static/` and any script in a static file.

Conventions that the authorisation test (tests/test_web_authz.py) enforces: every route,
API or page, has a row in its table of who may call it, so a new route fails the test
until its permissions are written down.
"""
