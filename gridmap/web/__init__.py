"""Web layer: thin blueprints (pages and the JSON API) over the service functions."""
