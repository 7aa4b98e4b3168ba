"""A task written for Django's task framework (``django.tasks``), run by the task handlers.

``welcome_email.enqueue(7)`` from any code, or Start on its task page: both go through the Task
starter's backend (``TASKS`` in the settings), and ``welcome_email.get_result(id)`` reads the run
history.
"""

try:  # Django 6.0 and later
    from django.tasks import task
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import task


@task
def welcome_email(customer_id: int, subject: str = "Welcome aboard") -> str:
    """Send a customer the welcome email (the demo only says what it would send)."""
    return f"Welcome email to customer {customer_id}: {subject}"


@task(takes_context=True, priority=10)
def onboarding_check(context, customer_id: int) -> dict:
    """An urgent check that reports which attempt it is (the framework's task context)."""
    return {"customer_id": customer_id, "attempt": context.attempt}
