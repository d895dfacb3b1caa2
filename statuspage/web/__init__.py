"""The HTTP layer: blueprints (public pages, the v2 status API, the visitor push API, the admin
UI, the v1 admin API and its OpenAPI document) and the app-wide HTTP behaviour. Views are thin:
they parse input, call the service functions in the package above, and render or serialize."""
