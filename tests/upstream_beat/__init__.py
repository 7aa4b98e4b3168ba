"""django-celery-beat's own scheduler tests, run against TaskStarterScheduler (see run.py)."""
