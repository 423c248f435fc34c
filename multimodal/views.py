"""The search page and item pages. Thin: parse with the form, call a selector, render."""
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from .encoders import EncoderLoadError
from .errors import UserInputError
from .forms import SearchForm, UploadForm
from .models import Corpus, IngestJob, Item
from .selectors import job_summary, recording_transcript, search_response
from .services.jobs import job_create_from_uploads, job_retry_failed


def search_page(request):
    """GET ?q=... searches by text (shareable URL); POST carries an image upload.

    A POST without an image redirects to the GET form of the same query, so text searches always
    end up in the address bar.
    """
    form = SearchForm(request.POST or request.GET or None, request.FILES or None)
    if request.method == "POST" and not request.FILES.get("image") and request.POST.get("q"):
        params = {key: request.POST[key] for key in ("q", "top_k", "corpus") if request.POST.get(key)}
        return redirect(f"{reverse('multimodal:search')}?{urlencode(params)}")
    response, error, status = None, None, 200
    if form.is_bound:
        if form.is_valid():
            try:
                response = search_response(query=form.to_query())
            except (UserInputError, EncoderLoadError) as exc:
                error, status = str(exc), 400 if isinstance(exc, UserInputError) else 503
        else:
            error, status = form.error_message(), 400
    return render(
        request,
        "multimodal/search.html",
        {"form": form, "response": response, "error": error, "corpora": Corpus.objects.all()},
        status=status,
    )


def item_detail(request, pk: int):
    """An item in full; a recording with its player and transcript, a segment playing from its second."""
    item = get_object_or_404(Item.objects.select_related("corpus", "parent"), pk=pk)
    return render(request, "multimodal/item_detail.html", {"item": item, "transcript": recording_transcript(item)})


@staff_member_required
def upload_page(request):
    """Staff upload files, archives or tables into a corpus; the job runs in the background."""
    form = UploadForm(request.POST or None, request.FILES or None, initial={"corpus": request.GET.get("corpus", "")})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                job = job_create_from_uploads(
                    corpus_name=form.cleaned_data["corpus"], files=form.cleaned_data["files"],
                    user=request.user, column_mapping=form.column_mapping(),
                )
            except UserInputError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(job.get_absolute_url())
        status = 400
    return render(request, "multimodal/upload.html", {"form": form, "corpora": Corpus.objects.all()}, status=status)


@staff_member_required
def job_detail(request, pk: int):
    job = get_object_or_404(IngestJob.objects.select_related("corpus"), pk=pk)
    return render(request, "multimodal/job_detail.html", {"job": job, "summary": job_summary(job)})


@staff_member_required
@require_POST
def job_retry(request, pk: int):
    job = get_object_or_404(IngestJob, pk=pk)
    count = job_retry_failed(job=job)
    messages.info(request, f"{count} failed item{'s' if count != 1 else ''} queued again.")
    return redirect(job.get_absolute_url())
