"""The web adapter: the Flask views, the page, OpenAPI, metrics, request logs, reload, auth."""
