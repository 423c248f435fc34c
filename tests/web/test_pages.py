"""The search page and item pages, through Django's test client."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from multimodal.models import Corpus, Item

from ..conftest import image_bytes, ingest_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(deterministic_encoder):
    corpus = Corpus.objects.create(name="site")
    files = {
        "red.png": image_bytes((255, 0, 0)),
        "xss.txt": b"<script>alert('owned')</script> red bicycle\nSecond line with <b>tags</b>.",
    }
    ingest_files(corpus, files)
    return corpus


def test_empty_page_shows_the_search_form(client, corpus):
    page = client.get("/").content.decode()
    assert 'name="q"' in page and 'type="file"' in page and 'name="image"' in page
    assert "<option value=\"site\"" in page


def test_text_query_renders_thumbnails_snippets_scores_and_links(client, corpus):
    response = client.get("/", {"q": "red", "hybrid": "false"})
    page = response.content.decode()
    assert response.status_code == 200
    red = Item.objects.get(title="red")
    assert f'href="/items/{red.pk}?back=q%3Dred%26hybrid%3Dfalse"' in page  # the way back to this search
    assert f'src="{red.thumbnail.url}"' in page
    assert "Fair match" in page and "Score 1.000" in page  # the label on the card, the raw score in Why's details
    assert "Second line with &lt;b&gt;tags&lt;/b&gt;." in page


def test_html_in_titles_and_text_is_escaped(client, corpus):
    page = client.get("/", {"q": "bicycle"}).content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt; red bicycle" in page
    item = Item.objects.get(kind="text")
    detail = client.get(f"/items/{item.pk}").content.decode()
    assert "<script>alert" not in detail and "&lt;script&gt;" in detail


def test_image_upload_without_javascript_is_kept_and_the_results_page_names_it(client, corpus):
    upload = SimpleUploadedFile("mine.png", image_bytes((250, 5, 5)), content_type="image/png")
    response = client.post("/", {"image": upload, "q": "", "corpus": "site"})
    assert response.status_code == 302
    assert response["Location"].startswith("/?parts=%5B%7B%22type%22%3A%22image%22%2C%22ref%22%3A%22")
    assert response["Location"].endswith("&corpus=site")
    response = client.get(response["Location"])
    page = response.content.decode()
    assert response.status_code == 200
    assert "image mine.png" in page
    red = Item.objects.get(title="red")
    assert page.index(f'href="/items/{red.pk}?back=') < page.index("bicycle")


def test_text_post_redirects_to_a_shareable_url(client, corpus):
    response = client.post("/", {"q": "red bicycle", "top_k": "5"})
    assert response.status_code == 302
    assert response["Location"] == "/?q=red+bicycle&top_k=5"


def test_bad_input_shows_a_message_in_the_page(client, corpus):
    upload = SimpleUploadedFile("broken.png", b"nope", content_type="image/png")
    response = client.post("/", {"image": upload})
    assert response.status_code == 400
    assert "broken.png: not an image" in response.content.decode()
    response = client.get("/", {"q": "red", "top_k": "0"})
    assert response.status_code == 400
    assert "Results per page must be at least 1." in response.content.decode()
    assert 'role="alert"' in response.content.decode()


def test_no_results_state(client, corpus):
    page = client.get("/", {"q": "red", "min_score": "9"}).content.decode()  # above any score, keywords included
    assert "Nothing matched" in page and "lower the minimum score" in page


def test_item_page_shows_the_full_image(client, corpus):
    item = Item.objects.get(title="red")
    page = client.get(f"/items/{item.pk}").content.decode()
    assert f'src="{item.file.url}"' in page
    assert client.get(item.file.url).status_code == 200
    assert client.get("/items/999999").status_code == 404


def test_admin_is_for_staff_only(client, corpus, django_user_model):
    assert client.get("/admin/multimodal/item/").status_code == 302
    user = django_user_model.objects.create_user("visitor", password="pw-visitor-123")
    client.force_login(user)
    assert client.get("/admin/multimodal/item/").status_code == 302
    user.is_staff = user.is_superuser = True
    user.save()
    assert client.get("/admin/multimodal/item/").status_code == 200


def test_an_empty_search_asks_for_something_and_filters_alone_only_preselect(client, corpus):
    response = client.get("/", {"q": ""})
    assert response.status_code == 200
    assert "Type what you are looking for, or add an image or a voice recording." in response.content.decode()
    page = client.get("/", {"corpus": "site", "kind": "image"}).content.decode()
    assert '<option value="site" selected>' in page and '<option value="image" selected>' in page
    assert 'class="results' not in page and 'role="alert"' not in page
