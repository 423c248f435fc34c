"""Who may upload into which corpus, and see or act on which ingest job: the rules, in one place.

Django's model permissions, plus one per-corpus restriction:

- Uploading needs ``multimodal.add_item``; uploading into a corpus that does not exist yet (which
  creates it) needs ``multimodal.add_corpus`` too. A corpus with uploader groups (`Corpus.uploaders`,
  set in the admin) takes uploads only from members of those groups; a corpus without any takes them
  from everyone holding ``add_item``.
- A job is seen by its creator and by holders of ``multimodal.view_ingestjob``; it is retried or
  cancelled by its creator and by holders of ``multimodal.change_ingestjob``.

Superusers hold every permission (Django's ``has_perm``) and pass every corpus's restriction.
The pages, the API and the admin all ask here; a refusal is a `PermissionDenied` whose message says
what is missing, shown as a 403 page or a 403 ``{"error": ...}``.
"""
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from ..models import Corpus, IngestJob

ADD_ITEM = "multimodal.add_item"
ADD_CORPUS = "multimodal.add_corpus"
VIEW_JOB = "multimodal.view_ingestjob"
CHANGE_JOB = "multimodal.change_ingestjob"


def may_upload(user) -> bool:
    """Whether ``user`` may upload at all (into some corpus)."""
    return user.is_active and user.has_perm(ADD_ITEM)


def corpora_uploadable(user) -> QuerySet[Corpus]:
    """The existing corpora ``user`` may upload into."""
    if not may_upload(user):
        return Corpus.objects.none()
    if user.is_superuser:
        return Corpus.objects.all()
    return Corpus.objects.filter(Q(uploaders=None) | Q(uploaders__in=user.groups.all())).distinct()


def corpus_upload_suggested(user) -> str:
    """The corpus an upload form starts with: the one ``user`` last uploaded into, else the only (or, by name,
    the first) corpus they may upload into; "" when they may upload into none yet."""
    allowed = corpora_uploadable(user)
    last = (IngestJob.objects.filter(created_by=user, corpus__in=allowed).order_by("-pk")
            .values_list("corpus__name", flat=True).first())
    return last or allowed.order_by("name").values_list("name", flat=True).first() or ""


def uploader_check(user) -> None:
    """Raise `PermissionDenied` unless ``user`` may upload at all."""
    if not may_upload(user):
        raise PermissionDenied(f"you may not upload: your account lacks the permission '{ADD_ITEM}'; "
                               "ask an administrator for it")


def upload_check(*, user, corpus_name: str) -> None:
    """Raise `PermissionDenied` naming what is missing unless ``user`` may upload into ``corpus_name``."""
    uploader_check(user)
    corpus = Corpus.objects.filter(name=corpus_name).first()
    if corpus is None:
        if not user.has_perm(ADD_CORPUS):
            raise PermissionDenied(f"there is no corpus '{corpus_name}', and creating one needs the permission "
                                   f"'{ADD_CORPUS}': upload into an existing corpus")
        return
    if not corpora_uploadable(user).filter(pk=corpus.pk).exists():
        groups = ", ".join(corpus.uploaders.values_list("name", flat=True).order_by("name"))
        raise PermissionDenied(f"corpus '{corpus.name}' takes uploads only from members of: {groups}")


def job_may_view(user, job: IngestJob) -> bool:
    return _is_creator(user, job) or user.has_perm(VIEW_JOB) or user.has_perm(CHANGE_JOB)


def job_may_change(user, job: IngestJob) -> bool:
    """Whether ``user`` may retry or cancel ``job``: its creator, or a holder of ``change_ingestjob``."""
    return _is_creator(user, job) or user.has_perm(CHANGE_JOB)


def job_view_check(user, job: IngestJob) -> None:
    if not job_may_view(user, job):
        raise PermissionDenied(f"job {job.pk} was started by another user: seeing it needs the permission "
                               f"'{VIEW_JOB}'")


def job_change_check(user, job: IngestJob) -> None:
    """Raise `PermissionDenied` unless ``user`` may retry or cancel ``job``."""
    if not job_may_change(user, job):
        raise PermissionDenied(f"job {job.pk} was started by another user: retrying or cancelling it needs the "
                               f"permission '{CHANGE_JOB}'")


def jobs_visible(user, jobs: QuerySet[IngestJob] | None = None) -> QuerySet[IngestJob]:
    """Of ``jobs`` (all by default), those ``user`` may see."""
    jobs = IngestJob.objects.all() if jobs is None else jobs
    if user.has_perm(VIEW_JOB) or user.has_perm(CHANGE_JOB):
        return jobs
    return jobs.filter(created_by=user) if user.is_authenticated else jobs.none()


def _is_creator(user, job: IngestJob) -> bool:
    return user.is_active and user.is_authenticated and job.created_by_id == user.pk
