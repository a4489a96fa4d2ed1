import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

from djust.asgi import get_asgi_application

application = get_asgi_application()
