"""Pause and Resume a queue, from the Task handlers and queues page: confirmed, then done.

GET asks (what the action will do, one button); POST does it through ``services.queues``,
which checks the permission and audits, and returns to the handlers page with a message.
"""

from __future__ import annotations

from typing import Literal

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from lime_task.config import tasks_config
from lime_task.routing import all_queue_names
from limepkg_task_starter import selectors
from limepkg_task_starter.permissions import PAUSE_QUEUE
from limepkg_task_starter.refusals import REFUSALS, refusal_messages
from limepkg_task_starter.services import queues

Action = Literal["pause", "resume"]

WILL_PAUSE = (
    "Task handlers stop taking new runs from {queue} within 5 seconds, and handlers started "
    "later do not take them either. Runs already started finish. Runs waiting in the queue, and "
    "runs sent to it from now on, stay in the broker (Pending) until the queue is resumed."
)
WILL_RESUME = (
    "Task handlers that consume {queue} take its waiting runs again within 5 seconds, oldest first."
)
QUESTIONS = {
    "pause": ("Pause queue {queue}?", WILL_PAUSE, "Pause the queue"),
    "resume": ("Resume queue {queue}?", WILL_RESUME, "Resume the queue"),
}


def _back(request: HttpRequest) -> str:
    """The handlers page it came from (keeping its application's tabs), or the plain one."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:task_starter:workers")


def queue_pause(request: HttpRequest, queue: str, *, site: AdminSite) -> HttpResponse:
    return _queue_action(request, queue, "pause", site=site)


def queue_resume(request: HttpRequest, queue: str, *, site: AdminSite) -> HttpResponse:
    return _queue_action(request, queue, "resume", site=site)


def _queue_action(
    request: HttpRequest, queue: str, action: Action, *, site: AdminSite
) -> HttpResponse:
    if not request.user.has_perm(PAUSE_QUEUE):
        raise PermissionDenied
    if request.method == "POST":
        return _act(request, queue, action)
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    if queue not in all_queue_names(tasks_config()):
        raise Http404("No such queue")
    title, question, label = QUESTIONS[action]
    return render(
        request,
        "task_starter/queue_confirm.html",
        {
            **site.each_context(request),
            "title": title.format(queue=queue),
            "question": question.format(queue=queue),
            "queue": queue,
            "pause": selectors.queue_pauses().get(queue),
            "confirm_label": label,
            "destructive": action == "pause",
            "action": request.path,
            "next": _back(request),
        },
    )


def _act(request: HttpRequest, queue: str, action: Action) -> HttpResponse:
    try:
        if action == "pause":
            queues.queue_pause(actor=request.user, queue=queue)
            messages.success(request, queues.PAUSED.format(queue=queue))
        else:
            queues.queue_resume(actor=request.user, queue=queue)
            messages.success(request, queues.RESUMED.format(queue=queue))
    except REFUSALS as error:
        messages.error(request, " ".join(refusal_messages(error)))
    return HttpResponseRedirect(_back(request))
