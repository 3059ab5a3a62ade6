"""Carina serves the rewritten OHIF build at /viewer/: the page for every route (signed in),
each file with its media type and caching, 404 for missing files, its own app-config.js, and a
503 that says what to do when the build is missing. The build step refuses a dist it does not
know."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from carina.accounts.actions import do_create_admin
from carina.tenancy.models import Hospital
from carina.viewer.build import MANIFEST_NAME, BuildError, build, main
from carina.viewer.tests.conftest import HASHED_BUNDLE, PASSWORD, WASM, WORKER_BUNDLES

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader_client(client: Client, hospital: Hospital) -> Client:
    """A browser signed in as a radiologist of the default hospital."""
    user, _ = do_create_admin("reader", PASSWORD, hospital, role="radiologist")
    assert isinstance(user, User)
    client.force_login(user)
    return client


# --- the build step ------------------------------------------------------------------------


def test_build_moves_every_root_reference_under_viewer(ohif_dist: Path, tmp_path: Path) -> None:
    out = tmp_path / "viewer"
    build(ohif_dist, out)
    index = (out / "index.html").read_text()
    assert index.count('window.PUBLIC_URL="/viewer/"') == 2
    assert 'src="/viewer/app-config.js"' in index
    assert f'src="/viewer/{HASHED_BUNDLE}"' in index
    assert 'href="/viewer/assets/icon-0.png"' in index
    assert 'href="//cdn.example.org"' in index  # protocol-relative URLs are left alone
    assert 'href="/assets' not in index and 'src="/app' not in index
    for name in [HASHED_BUNDLE, *WORKER_BUNDLES]:
        assert '__webpack_require__.p = "/viewer/";' in (out / name).read_text()
    assert "'/viewer/dicom-microscopy-viewer/" in (out / HASHED_BUNDLE).read_text()
    assert "url(/viewer/a34f9d1faa5f" in (out / "app.bundle.css").read_text()
    assert '"/viewer/assets/android-0.png"' in (out / "manifest.json").read_text()
    # The demo configuration and static-host rules are not shipped; Carina makes its own.
    assert not (out / "app-config.js").exists() and not (out / "serve.json").exists()
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["base"] == "/viewer/" and len(manifest["script_hashes"]) == 2
    assert (
        gzip.decompress((out / f"{HASHED_BUNDLE}.gz").read_bytes())
        == (out / HASHED_BUNDLE).read_bytes()
    )


def test_build_fails_loudly_on_a_dist_it_does_not_know(ohif_dist: Path, tmp_path: Path) -> None:
    bundle = ohif_dist / WORKER_BUNDLES[0]
    bundle.write_text(bundle.read_text().replace('__webpack_require__.p = "/";', ""))
    out = tmp_path / "viewer"
    with pytest.raises(BuildError, match=r"found 7 occurrence.*expected 8.*docs/viewer.md"):
        build(ohif_dist, out)
    assert not out.exists()
    assert list(tmp_path.glob("viewer.tmp-*")) == []  # no half-written copy left behind


def test_a_failed_rebuild_keeps_the_previous_viewer(
    ohif_dist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "viewer"
    build(ohif_dist, out)
    index = ohif_dist / "index.html"
    index.write_text(index.read_text().replace('window.PUBLIC_URL="/"', "", 1))
    assert main([str(ohif_dist), str(out)]) == 1
    assert "PUBLIC_URL in index.html: found 1 occurrence" in capsys.readouterr().err
    assert (out / "index.html").read_text().count('PUBLIC_URL="/viewer/"') == 2


def test_build_refuses_another_ohif_version(ohif_dist: Path, tmp_path: Path) -> None:
    (ohif_dist.parent / "package.json").write_text('{"name": "@ohif/app", "version": "3.14.0"}')
    with pytest.raises(BuildError, match=r"3\.14\.0; this step knows 3\.13\.2"):
        build(ohif_dist, tmp_path / "viewer")


# --- the page and its routes ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["/viewer/", "/viewer/viewer?StudyInstanceUIDs=1.2.3", "/viewer/viewer?hangingprotocolId=mpr"],
)
def test_signed_out_users_go_to_sign_in_and_come_back(
    client: Client, viewer_dir: Path, url: str
) -> None:
    response = client.get(url)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("/accounts/login/?next=")
    sign_in = client.get(location)
    assert sign_in.status_code == 200
    assert f'name="next" value="{url}"'.replace("&", "&amp;") in sign_in.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "",
        "viewer",
        "viewer?StudyInstanceUIDs=1.2.840.113619.2.55",
        "segmentation",
        "notfoundstudy",
        "viewer/1.2.840.113619.2.55",
        "index.html",
    ],
)
def test_every_route_is_the_single_page(reader_client: Client, viewer_dir: Path, path: str) -> None:
    response = reader_client.get(f"/viewer/{path}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert b'window.PUBLIC_URL="/viewer/"' in response.content
    assert "no-cache" in response["Cache-Control"]
    hashes = json.loads((viewer_dir / MANIFEST_NAME).read_text())["script_hashes"]
    csp = response["Content-Security-Policy"]
    assert all(f"'{h}'" in csp for h in hashes)
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp


def test_viewer_without_slash_redirects_to_the_list(
    reader_client: Client, viewer_dir: Path
) -> None:
    response = reader_client.get("/viewer")
    assert response.status_code == 301
    assert response["Location"] == "/viewer/"


def test_the_page_only_answers_reads(reader_client: Client, viewer_dir: Path) -> None:
    assert reader_client.post("/viewer/viewer").status_code == 405


# --- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        (HASHED_BUNDLE, "text/javascript"),
        (WORKER_BUNDLES[2], "text/javascript"),
        (WASM, "application/wasm"),
        ("app.bundle.css", "text/css"),
        ("manifest.json", "application/json"),
        ("assets/favicon.ico", "image/vnd.microsoft.icon"),
    ],
)
def test_files_have_their_media_type_and_nosniff(
    client: Client, viewer_dir: Path, path: str, media_type: str
) -> None:
    response = client.get(f"/viewer/{path}")  # files hold no patient data: no sign-in needed
    assert response.status_code == 200
    assert response["Content-Type"] == media_type
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == (viewer_dir / path).read_bytes()  # type: ignore[attr-defined]
    assert "Content-Encoding" not in response


@pytest.mark.parametrize(
    "path",
    [
        "missing.js",
        "1234.bundle.0000000000000000.js",
        "assets/nothing.png",
        "fonts/x.woff2",
        "missing.wasm",
        ".carina-viewer.json",
        "..%2Fviewer.tmp%2Findex.html",
    ],
)
def test_missing_files_are_404_not_the_page(
    reader_client: Client, viewer_dir: Path, path: str
) -> None:
    response = reader_client.get(f"/viewer/{path}")
    assert response.status_code == 404
    assert b"PUBLIC_URL" not in response.content


def test_hashed_bundles_are_immutable_and_others_revalidate(
    client: Client, viewer_dir: Path
) -> None:
    for name in [HASHED_BUNDLE, WASM]:
        response = client.get(f"/viewer/{name}")
        assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    css = client.get("/viewer/app.bundle.css")
    assert css["Cache-Control"] == "public, no-cache"
    again = client.get("/viewer/app.bundle.css", headers={"If-None-Match": css["ETag"]})
    assert again.status_code == 304
    assert again["Cache-Control"] == "public, no-cache"


def test_large_files_go_compressed_to_browsers_that_accept_gzip(
    client: Client, viewer_dir: Path
) -> None:
    plain = (viewer_dir / HASHED_BUNDLE).read_bytes()
    response = client.get(f"/viewer/{HASHED_BUNDLE}", headers={"Accept-Encoding": "gzip, br"})
    assert response["Content-Encoding"] == "gzip"
    assert response["Content-Type"] == "text/javascript"
    assert "Accept-Encoding" in response["Vary"]
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert gzip.decompress(body) == plain and len(body) < len(plain)
    refused = client.get(f"/viewer/{HASHED_BUNDLE}", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused
    assert b"".join(refused.streaming_content) == plain  # type: ignore[attr-defined]
    etags = {response["ETag"], refused["ETag"]}
    assert len(etags) == 2  # a cache never confuses the two


# --- app-config.js --------------------------------------------------------------------------


def test_app_config_points_ohif_at_dicomweb_on_this_origin(
    client: Client, viewer_dir: Path
) -> None:
    response = client.get("/viewer/app-config.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert "no-cache" in response["Cache-Control"]
    config = response.content.decode()
    for setting in [
        "routerBasename: '/viewer'",
        "qidoRoot: '/dicomweb'",
        "wadoRoot: '/dicomweb'",
        "imageRendering: 'wadors'",
        "thumbnailRendering: 'thumbnail'",
        "thumbnailRequestStrategy: 'fetch'",
        "enableStudyLazyLoad: true",
        "omitQuotationForMultipartRequest: true",
        "singlepart: 'bulkdata,video,pdf'",
        "dicomUploadEnabled: true",
        "showCPUFallbackMessage: false",
        "investigationalUseDialog: { option: 'never' }",
        "staticWado: false",
    ]:
        assert setting in config
    assert "error.status === 401" in config
    assert "'/accounts/login/?next=' + encodeURIComponent(next)" in config
    assert "cloudfront" not in config


def test_app_config_does_not_need_the_build(client: Client, settings: Any, tmp_path: Path) -> None:
    settings.CARINA_VIEWER_DIR = tmp_path / "nothing"
    assert client.get("/viewer/app-config.js").status_code == 200


# --- not installed ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "viewer?StudyInstanceUIDs=1.2.3", "app.bundle.css"])
def test_missing_build_is_a_clear_503(
    reader_client: Client, settings: Any, tmp_path: Path, path: str
) -> None:
    settings.CARINA_VIEWER_DIR = tmp_path / "no-viewer-here"
    response = reader_client.get(f"/viewer/{path}")
    assert response.status_code == 503
    page = response.content.decode()
    assert "The viewer is not installed" in page
    assert "make viewer" in page and str(tmp_path / "no-viewer-here") in page
