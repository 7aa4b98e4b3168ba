# Tasks written for Django's task framework, as its documentation writes them.
try:
    from django.tasks import task
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import task


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def fails(message: str):
    raise ValueError(message)


@task(takes_context=True)
def which_attempt(context, label: str) -> dict:
    return {"label": label, "attempt": context.attempt, "id": context.task_result.id}


@task
async def async_double(value: int) -> int:
    return value * 2
