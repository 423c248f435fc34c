"""The adapter page: training progress, held-out figures before and after, and index builds."""
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, render

from ..models import Adapter
from ..selectors import adapter_summary


@staff_member_required
def adapter_detail(request, pk: int):
    adapter = get_object_or_404(Adapter.objects.select_related("corpus"), pk=pk)
    return render(request, "multimodal/adapter_detail.html", {"adapter": adapter, "summary": adapter_summary(adapter)})
