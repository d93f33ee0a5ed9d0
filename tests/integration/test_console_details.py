"""Console details a user notices: the template preview agrees with saving, every page
has an icon, and a connector with nothing to do is shown as skipped, not failing."""

from __future__ import annotations

import html
import re
import threading
from datetime import timedelta

from fastapi.testclient import TestClient

from interlock.clock import ManualClock
from interlock.domain.keys import Scope
from interlock.services.container import Container
from interlock.services.endpoints import EndpointSpec
from tests.conftest import make_key
from tests.integration.test_console import _csrf, _declare, _key, _sign_in
from tests.support.delivery import deliver_round
from tests.support.ingest import am_alert, am_payload, basic, create_source, process_all
from tests.support.receiver import Receiver, ok, status

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


def test_alerts_on_an_incident_are_told_apart_by_the_labels_that_differ(
        hub: Container, hub_client: TestClient) -> None:
    admin = make_key(hub, Scope.ADMIN, name="admin")
    source = create_source(hub_client, admin)
    payload = am_payload(am_alert("HighErrorRate", instance="web-1", pod="checkout-7f9"),
                         am_alert("HighErrorRate", instance="web-2", pod="checkout-7f9"))
    assert hub_client.post(source["path"], json=payload,
                           headers=basic(source["token"])).status_code == 202
    process_all(hub)
    _sign_in(hub_client, _key(hub, Scope.ADMIN))
    page = hub_client.get("/incidents/INC-1").text
    alerts = page.split('id="incident-alerts"')[1].split("</section>")[0]
    assert "instance=web-1" in alerts and "instance=web-2" in alerts
    assert "pod=" not in alerts  # the same on both: it tells nothing apart
    assert ("Incident declared by 2 alerts: HighErrorRate on checkout (instance=web-1), "
            "HighErrorRate on checkout (instance=web-2)") in page


def _attempt_rows(page: str) -> list[str]:
    table = page.split('id="attempt-log"')[1].split("</table>")[0]
    return table.split('<tr class="attempt')[1:]


def test_the_attempt_log_names_the_incident_and_a_past_retry_reads_as_done(
        hub: Container, hub_client: TestClient, manual_clock: ManualClock) -> None:
    _sign_in(hub_client, _key(hub, Scope.ADMIN))
    with Receiver(status(500)) as receiver:
        endpoint, _ = hub.endpoints.create(EndpointSpec(url=receiver.url))
        _declare(hub, "Checkout returns 500")
        deliver_round(hub)  # try 1: 500, a retry scheduled 5 s on
        page = hub_client.get(f"/endpoints/{endpoint.id}").text
        [failed] = _attempt_rows(page)
        assert 'href="/incidents/INC-1">INC-1 v1</a>' in failed
        assert "next try" in failed and "ago" not in failed.split("next try")[1][:200]
        receiver.behaviour = ok
        manual_clock.advance(timedelta(seconds=10))
        deliver_round(hub)  # try 2: 200
        page = hub_client.get(f"/endpoints/{endpoint.id}").text
        second, first = _attempt_rows(page)
        assert "retried: try 2" in first and "next try" not in first
        assert "INC-1 v1" in second


def test_send_test_shows_its_attempt_live_even_if_it_lands_while_the_page_loads(
        hub: Container, hub_client: TestClient) -> None:
    _sign_in(hub_client, _key(hub, Scope.ADMIN))
    with Receiver() as receiver:
        endpoint, _ = hub.endpoints.create(EndpointSpec(url=receiver.url))
        token = _csrf(hub_client.get(f"/endpoints/{endpoint.id}").text)
        hub_client.post(f"/endpoints/{endpoint.id}/test", data={"csrf_token": token})
        page = hub_client.get(f"/endpoints/{endpoint.id}").text  # "1 pending"
        live_url = html.unescape(re.search(r'data-live="([^"]+)"', page)[1])  # type: ignore[index]
        deliver_round(hub)  # the attempt lands before the page's stream connects
        feed = hub_client.app.state.console_feed  # type: ignore[attr-defined]
        received: list[str] = []
        closer = threading.Timer(15, feed.close)  # the deadline: never wait forever
        closer.start()
        try:
            with hub_client.stream("GET", live_url) as stream:
                for line in stream.iter_lines():
                    received.append(line)
                    if line.startswith("event: attempt"):
                        break
        finally:
            closer.cancel()
            feed.close()
    assert "event: attempt" in received
