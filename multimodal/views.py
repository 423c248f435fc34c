"""The search page and item pages. Thin: parse with the form, call a selector, render."""
from urllib.parse import urlencode

from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from .encoders import EncoderLoadError
from .errors import UserInputError
from .forms import SearchForm
from .models import Corpus, Item
from .selectors import search_response


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
    item = get_object_or_404(Item.objects.select_related("corpus"), pk=pk)
    return render(request, "multimodal/item_detail.html", {"item": item})
