"""ClassMood's classroom server: a FastAPI app built by :func:`classmood.server.app.create_app`.

One package per feature (accounts, courses, sessions, observations, analytics, live), each with
``models.py`` (tables), ``schemas.py`` (API shapes), ``service.py`` (logic) and ``router.py`` (HTTP).
"""
