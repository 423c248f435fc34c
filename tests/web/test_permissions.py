"""Uploads and jobs follow Django permissions, per corpus where a corpus names its uploader groups.

Being staff opens the pages; what a staff user may do there is multimodal/web/permissions.py's: upload
needs add_item (a new corpus add_corpus too), a job is its creator's or needs view/change_ingestjob.
"""
import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from multimodal.models import ApiToken, Corpus, IngestJob, IngestUnit

from ..conftest import UPLOADER_PERMISSIONS, noise_png, permissions_grant

pytestmark = pytest.mark.django_db


def _staff(django_user_model, name: str, *codenames: str):
    user = django_user_model.objects.create_user(name, password=f"pw-{name}-123", is_staff=True)
    return permissions_grant(user, *codenames)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(user=user)[1]}"}


def _files():
    return [SimpleUploadedFile("a.png", noise_png(1))]


def test_staff_without_add_item_may_not_upload_by_page_or_api(django_user_model, settings):
    staff = _staff(django_user_model, "viewer")
    Corpus.objects.create(name="shop")
    page = _client(staff).get("/upload")
    assert page.status_code == 403 and "multimodal.add_item" in page.content.decode()
    posted = _client(staff).post("/upload", {"corpus": "shop", "files": _files()})
    assert posted.status_code == 403
    api = Client().post("/api/uploads", {"corpus": "shop", "files": _files()}, **_bearer(staff))
    assert api.status_code == 403
    assert api.json() == {"error": "you may not upload: your account lacks the permission 'multimodal.add_item'; "
                                   "ask an administrator for it"}
    assert not IngestJob.objects.exists()
    assert not (settings.MULTIMODAL_UPLOAD_ROOT.exists() and any(settings.MULTIMODAL_UPLOAD_ROOT.iterdir()))


def test_a_new_corpus_needs_add_corpus(django_user_model, django_capture_on_commit_callbacks):
    Corpus.objects.create(name="shop")
    staff = _staff(django_user_model, "adder", "add_item")
    page = _client(staff).post("/upload", {"corpus": "brand-new", "files": _files()})
    assert page.status_code == 403
    assert "there is no corpus &#x27;brand-new&#x27;, and creating one needs the permission" in page.content.decode()
    api = Client().post("/api/uploads", {"corpus": "brand-new", "files": _files()}, **_bearer(staff))
    assert api.status_code == 403 and "multimodal.add_corpus" in api.json()["error"]
    assert not Corpus.objects.filter(name="brand-new").exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert _client(staff).post("/upload", {"corpus": "shop", "files": _files()}).status_code == 302
        assert Client().post("/api/uploads", {"corpus": "shop", "files": _files()}, **_bearer(staff)).status_code == 202
    assert IngestJob.objects.filter(corpus__name="shop", created_by=staff).count() == 2


def test_a_corpus_with_uploader_groups_takes_uploads_only_from_their_members(django_user_model,
                                                                             django_capture_on_commit_callbacks):
    editors = Group.objects.create(name="editors")
    private = Corpus.objects.create(name="private")
    private.uploaders.add(editors)
    Corpus.objects.create(name="open")
    outsider = _staff(django_user_model, "outsider", *UPLOADER_PERMISSIONS)
    member = _staff(django_user_model, "member", *UPLOADER_PERMISSIONS)
    member.groups.add(editors)
    root = django_user_model.objects.create_superuser("root", password="pw-root-123")

    form = _client(outsider).get("/upload").content.decode()
    assert '<option value="open">' in form and '<option value="private">' not in form
    refused = _client(outsider).post("/upload", {"corpus": "private", "files": _files()})
    assert refused.status_code == 403
    assert "corpus &#x27;private&#x27; takes uploads only from members of: editors" in refused.content.decode()
    api = Client().post("/api/uploads", {"corpus": "private", "files": _files()}, **_bearer(outsider))
    assert api.status_code == 403 and api.json()["error"] == "corpus 'private' takes uploads only from members of: editors"
    assert not IngestJob.objects.exists()

    assert '<option value="private">' in _client(member).get("/upload").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert _client(member).post("/upload", {"corpus": "private", "files": _files()}).status_code == 302
        assert _client(root).post("/upload", {"corpus": "private", "files": _files()}).status_code == 302
    assert IngestJob.objects.filter(corpus=private).count() == 2


def test_the_upload_form_starts_with_the_corpus_asked_for_else_the_last_used_else_the_first_allowed(
        django_user_model):
    editors = Group.objects.create(name="editors")
    Corpus.objects.create(name="archive").uploaders.add(editors)  # first by name, but not this uploader's
    Corpus.objects.create(name="photos")
    notes = Corpus.objects.create(name="notes")
    uploader = _staff(django_user_model, "uploader", *UPLOADER_PERMISSIONS)

    def corpus_field(query=""):
        page = _client(uploader).get(f"/upload{query}").content.decode()
        return page.split('id="id_corpus"')[1].split('value="')[1].split('"')[0]

    assert corpus_field() == "notes"  # of the corpora it may upload into, the first by name
    IngestJob.objects.create(corpus=notes, created_by=uploader)
    IngestJob.objects.create(corpus=Corpus.objects.get(name="photos"), created_by=uploader)
    assert corpus_field() == "photos"  # the one it last uploaded into
    assert corpus_field("?corpus=new-one") == "new-one"


@pytest.fixture
def failed_job(django_user_model, django_capture_on_commit_callbacks):
    """A job by ``owner`` that ran in-process with one file that failed and can be retried."""
    owner = _staff(django_user_model, "owner", *UPLOADER_PERMISSIONS)
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(owner).post("/upload", {"corpus": "shop", "files": [
            SimpleUploadedFile("good.png", noise_png(1)), SimpleUploadedFile("broken.png", noise_png(2)[:80])]})
    job = IngestJob.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))
    assert job.units.filter(status="failed", retryable=True).count() == 1
    return job


def _failed_units(job) -> int:
    return job.units.filter(status=IngestUnit.Status.FAILED).count()


def test_another_uploaders_job_is_neither_shown_nor_retried_but_its_creator_does_both(django_user_model, failed_job):
    other = _staff(django_user_model, "other", *UPLOADER_PERMISSIONS)
    client, bearer = _client(other), _bearer(other)
    page = client.get(f"/jobs/{failed_job.pk}")
    assert page.status_code == 403
    assert f"job {failed_job.pk} was started by another user" in page.content.decode()
    assert "broken.png" not in page.content.decode()
    api = Client().get(f"/api/jobs/{failed_job.pk}", **bearer)
    assert api.status_code == 403 and api.json() == {
        "error": f"job {failed_job.pk} was started by another user: seeing it needs the permission "
                 "'multimodal.view_ingestjob'"}
    assert client.post(f"/jobs/{failed_job.pk}/retry").status_code == 403
    assert Client().post(f"/api/jobs/{failed_job.pk}/retry", **bearer).status_code == 403
    # The admin lists only their own jobs, and its retry action leaves others' alone.
    assert client.get("/admin/multimodal/ingestjob/").status_code == 200
    assert client.get(f"/admin/multimodal/ingestjob/{failed_job.pk}/change/").status_code == 302  # "does not exist"
    client.post("/admin/multimodal/ingestjob/", {"action": "retry_failed", "_selected_action": [failed_job.pk]})
    assert _failed_units(failed_job) == 1
    # Its creator, with the same permissions, sees it and retries it.
    creator = _client(failed_job.created_by)
    page = creator.get(f"/jobs/{failed_job.pk}").content.decode()
    assert "broken.png" in page and "Retry failed files" in page
    assert creator.post(f"/jobs/{failed_job.pk}/retry").status_code == 302
    assert _failed_units(failed_job) == 0


def test_view_permission_shows_every_job_and_change_permission_retries_it(django_user_model, failed_job):
    viewer = _staff(django_user_model, "viewer", "view_ingestjob")
    page = _client(viewer).get(f"/jobs/{failed_job.pk}")
    assert page.status_code == 200 and "broken.png" in page.content.decode()
    assert "Retry failed files" not in page.content.decode()
    assert Client().get(f"/api/jobs/{failed_job.pk}", **_bearer(viewer)).status_code == 200
    refused = Client().post(f"/api/jobs/{failed_job.pk}/retry", **_bearer(viewer))
    assert refused.status_code == 403 and "'multimodal.change_ingestjob'" in refused.json()["error"]
    assert _client(viewer).post("/admin/multimodal/ingestjob/", {
        "action": "retry_failed", "_selected_action": [failed_job.pk]}).status_code == 200  # no such action for it
    assert _failed_units(failed_job) == 1

    changer = _staff(django_user_model, "changer", "change_ingestjob")
    assert "Retry failed files" in _client(changer).get(f"/jobs/{failed_job.pk}").content.decode()
    assert Client().post(f"/api/jobs/{failed_job.pk}/retry", **_bearer(changer)).json()["retried"] == 1
    assert _failed_units(failed_job) == 0


def test_only_a_superuser_issues_api_keys_for_other_users(django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw-root-123")
    staff = _staff(django_user_model, "issuer", "add_apitoken", "view_apitoken")
    client = _client(staff)
    response = client.post("/admin/multimodal/apitoken/add/", {"user": root.pk, "name": "mine now"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not ApiToken.objects.filter(user=root).exists()
    assert client.post("/admin/multimodal/apitoken/add/", {"user": staff.pk, "name": "own"}).status_code == 302
    assert ApiToken.objects.filter(user=staff).count() == 1
