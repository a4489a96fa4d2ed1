"""A minimal site for djust 1.2.6 (PyPI), the peer: served from bench/.peer/venv, never ours."""
