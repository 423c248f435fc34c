"""The staff page of near-duplicate groups: biggest first, keep one (or some), delete the rest. Thin."""
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ..errors import UserInputError
from ..models import Corpus
from ..services.duplicates import LEVELS, duplicate_group_resolve, duplicate_groups

DELETE_ITEM = "multimodal.delete_item"
GROUPS_SHOWN = 50


@staff_member_required
def duplicates_page(request):
    """``?level=same|similar`` (default same) and ``?corpus=NAME``; the keep/delete form shows for staff who may
    delete items (`multimodal.delete_item`)."""
    level = request.GET.get("level") if request.GET.get("level") in LEVELS else "same"
    corpus = Corpus.objects.filter(name=request.GET.get("corpus", "")).first()
    groups, total = duplicate_groups(level=level, corpus=corpus, limit=GROUPS_SHOWN)
    return render(request, "multimodal/duplicates.html", {
        "level": level, "levels": LEVELS, "corpus": corpus, "corpora": Corpus.objects.all(), "groups": groups,
        "total": total, "may_delete": request.user.has_perm(DELETE_ITEM),
    })


@staff_member_required
@require_POST
def duplicates_resolve(request):
    """Delete the members of one group that are not ticked ``keep`` (items, vectors and files), then back to the list."""
    if not request.user.has_perm(DELETE_ITEM):
        raise PermissionDenied(f"deleting items needs the permission '{DELETE_ITEM}'")
    level = request.POST.get("level", "")
    group = request.POST.get("group", "")
    if level not in LEVELS or not group.isdigit():
        raise PermissionDenied("no such group")  # only a forged form names none
    keep = [int(value) for value in request.POST.getlist("keep") if value.isdigit()]
    try:
        deleted = duplicate_group_resolve(level=level, key=int(group), keep=keep)
    except UserInputError as exc:
        messages.error(request, f"Nothing was deleted: {exc}.")
    else:
        messages.info(request, f"Deleted {deleted} item{'s' if deleted != 1 else ''} and their vectors.")
    params = {"level": level, **({"corpus": request.POST["corpus"]} if request.POST.get("corpus") else {})}
    return redirect(f"{reverse('multimodal:duplicates')}?{urlencode(params)}")
