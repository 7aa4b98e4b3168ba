""" "Retry all N failed runs matching" and "Cancel all N waiting runs matching": the
confirmation, which names the count and the filter, and the page that follows the action's
progress (polled through htmx until it has finished). The work is ``services.bulk``'s."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails

from limepkg_task_starter import selectors
from limepkg_task_starter.forms import RunFilterForm
from limepkg_task_starter.models import Application, BulkActionKind
from limepkg_task_starter.permissions import CANCEL, START, VIEW_RUNS
from limepkg_task_starter.refusals import REFUSALS, refusal_messages
from limepkg_task_starter.run_filter_text import describe_filter
from limepkg_task_starter.services import bulk

SAMPLE = 10  # the newest runs shown on the confirmation, so the person sees what they are
NEEDS = {BulkActionKind.RETRY: START, BulkActionKind.CANCEL: CANCEL}
WORDS = {
    BulkActionKind.RETRY: {
        "runs": "failed runs",
        "one": "failed run",
        "title": "Retry all {count} failed runs matching?",
        "question": "Start each of them again, with its arguments, as the same user? Each goes "
        "through the start policy; runs already retried are left out.",
        "button": "Retry {count} runs",
        "done": "retried",
        "doing": "Retrying",
    },
    BulkActionKind.CANCEL: {
        "runs": "waiting runs",
        "one": "waiting run",
        "title": "Cancel all {count} waiting runs matching?",
        "question": "Cancel each of them, so that it never starts? Runs that start meanwhile "
        "are left running.",
        "button": "Cancel {count} runs",
        "done": "cancelled",
        "doing": "Cancelling",
    },
}
NO_FILTER = "no filter (every run of the application)"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _words(kind: BulkActionKind, count: int) -> dict[str, str]:
    """What the pages say of the action, for ``count`` runs ("Retry 1 run", "Retry 2 runs")."""
    words = {key: text.format(count=f"{count:,}") for key, text in WORDS[kind].items()}
    if count == 1:
        for key in ("title", "button", "runs"):
            words[key] = words[key].replace(" runs", " run")
    return words


def _application(request: HttpRequest, app_name: str) -> Application:
    if not request.user.has_perm(VIEW_RUNS):
        raise PermissionDenied
    application = selectors.application_for_user(user=request.user, name=app_name)
    if application is None:
        raise Http404("No such application")
    return application


def _filter_form(application: Application, data: QueryDict) -> RunFilterForm:
    return RunFilterForm(data or None, task_names=selectors.run_task_names(application=application))


def _runs_page(application: Application, query: str) -> str:
    url = reverse("admin:task_starter:runs", kwargs={"app_name": application.name})
    return f"{url}?{query}" if query else url


@require_http_methods(["GET", "POST"])
def runs_bulk(
    request: HttpRequest, app_name: str, *, kind: BulkActionKind, site: AdminSite
) -> HttpResponse:
    """GET: what the action would do, to confirm. POST: do it (in the background)."""
    application = _application(request, app_name)
    if not request.user.has_perm(NEEDS[kind]):
        raise PermissionDenied
    data = request.GET if request.method == "GET" else QueryDict(request.POST.get("filter", ""))
    query = _filter_query(data)
    form = _filter_form(application, QueryDict(query))
    runs = selectors.runs_to_act_on(application=application, filters=form.filters(), kind=kind)
    if request.method == "GET":
        return _confirmation(request, site, application, kind, form, runs, query)
    try:
        action = bulk.bulk_action_start(
            actor=request.user,
            application=application,
            kind=kind,
            run_ids=list(runs.values_list("id", flat=True)[: selectors.MAX_BULK_ITEMS]),
            matched=selectors.count_up_to(runs, selectors.MAX_BULK_ITEMS + 1),
            filter_query=query,
            filter_text=describe_filter(form),
        )
    except REFUSALS as error:
        messages.error(request, " ".join(refusal_messages(error)))
        return HttpResponseRedirect(_runs_page(application, query))
    return HttpResponseRedirect(
        reverse(
            "admin:task_starter:bulk_action",
            kwargs={"app_name": application.name, "action_id": action.id},
        )
    )


def _filter_query(data: QueryDict) -> str:
    """The runs page's filter as a query string, without its page position."""
    query = data.copy()
    for key in ("before", "confirm", "csrfmiddlewaretoken"):
        query.pop(key, None)
    return query.urlencode()


def _confirmation(
    request: HttpRequest,
    site: AdminSite,
    application: Application,
    kind: BulkActionKind,
    form: RunFilterForm,
    runs: Any,
    query: str,
) -> HttpResponse:
    matched = selectors.count_up_to(runs, selectors.MAX_BULK_ITEMS + 1)
    count = min(matched, selectors.MAX_BULK_ITEMS)
    words = _words(kind, count)
    return render(
        request,
        "task_starter/bulk_confirm.html",
        {
            **site.each_context(request),
            "title": words["title"],
            "is_nav_sidebar_enabled": False,  # as on the runs page it comes from
            "words": words,
            "application": application,
            "kind": kind,
            "count": count,
            "capped": matched > selectors.MAX_BULK_ITEMS,
            "cap": selectors.MAX_BULK_ITEMS,
            "filter_text": describe_filter(form) or NO_FILTER,
            "filter_query": query,
            "sample": list(runs[:SAMPLE]),
            "back": _runs_page(application, query),
            "destructive": kind == BulkActionKind.CANCEL,
        },
    )


@require_GET
def bulk_action(
    request: HtmxHttpRequest, app_name: str, action_id: int, *, site: AdminSite
) -> HttpResponse:
    """An action's progress; its live part is polled every second until it has finished. A
    look at an action whose processor went quiet takes it over (``services.bulk``)."""
    application = _application(request, app_name)
    action = selectors.bulk_action_for_user(user=request.user, action_id=action_id)
    if action is None or action.application_id != application.name:
        raise Http404("No such bulk action")
    bulk.bulk_action_resume_if_stalled(action=action)
    progress = selectors.bulk_progress(action=action)
    words = _words(BulkActionKind(action.kind), progress.total)
    context = {
        **site.each_context(request),
        "title": f"{words['doing']} {progress.total:,} {words['runs']}",
        "is_nav_sidebar_enabled": False,
        "application": application,
        "action": action,
        "progress": progress,
        "words": words,
        "refused": selectors.bulk_items_refused(action=action),
        "filter_text": action.filter_text or NO_FILTER,
        "back": _runs_page(application, action.filter_query),
    }
    if request.htmx:
        response = render(request, "task_starter/bulk_action.html#bulk-live", context)
        return HttpResponseStopPolling(response.content) if progress.finished else response
    return render(request, "task_starter/bulk_action.html", context)
