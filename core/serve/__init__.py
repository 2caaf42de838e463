"""`tagline serve`: the same engine over HTTP (FastAPI + uvicorn), with a small web page."""
