"""Console details a user notices: the template preview agrees with saving, every page
has an icon, and a connector with nothing to do is shown as skipped, not failing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from interlock.domain.keys import Scope
from interlock.services.container import Container
from tests.integration.test_console import _csrf, _key, _sign_in

#: A public address by IP, so saving needs no DNS.
HOOK = "https://93.184.215.14/hook"
UNGUARDED = '{"text": {{ data.incident.title | tojson }}}'
WARNING = "Saving will be refused"


def _endpoint_form(client: TestClient, action: str, **fields: str) -> tuple[int, str]:
    token = _csrf(client.get("/endpoints/new").text)
    answer = client.post("/endpoints/new", data={
        "csrf_token": token, "action": action, "url": HOOK, "timeout": "5",
        "sample": "incident.created", **fields})
    return answer.status_code, answer.text


def test_the_template_preview_warns_exactly_when_saving_refuses(
    client: TestClient, container: Container
) -> None:
    _sign_in(client, _key(container, Scope.ADMIN))
    # Private incidents can reach it: the preview warns, and saving is refused.
    status, page = _endpoint_form(client, "preview", template=UNGUARDED)
    assert status == 200 and WARNING in page
    status, page = _endpoint_form(client, "save", template=UNGUARDED)
    assert status == 422 and "fails for private incidents" in page
    # The filter keeps private incidents out: no warning, and saving succeeds.
    public_only = '{"visibility": "public"}'
    status, page = _endpoint_form(client, "preview", template=UNGUARDED, filter=public_only)
    assert status == 200 and WARNING not in page
    status, page = _endpoint_form(client, "save", template=UNGUARDED, filter=public_only)
    assert status == 201, page
    # Guarded as the README shows: no warning, saved.
    guarded = ('{% if data.incident.title is defined %}' + UNGUARDED +
               '{% else %}{"text": "A private incident changed"}{% endif %}')
    status, page = _endpoint_form(client, "preview", template=guarded)
    assert status == 200 and WARNING not in page
    assert _endpoint_form(client, "save", template=guarded)[0] == 201


def test_pages_name_an_icon_and_favicon_ico_is_found(client: TestClient,
                                                      container: Container) -> None:
    assert 'rel="icon"' in client.get("/login").text
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.text.startswith("<svg")
