"""Status page subscribers as use cases: subscribe (an address, with double opt-in; a
webhook URL, through its own endpoint), confirm and unsubscribe by signed link, and
fan each public update out to the confirmed subscribers of the components it touched.

The fan-out is another consumer of the event outbox, called in the same transaction
that fans events out to endpoints (``DeliveryService``'s ``fan_outs``): the mails of
an ``incident.public_update`` are queued and its ``status_page.update`` deliveries
created in the transaction that marks the event dispatched, so a crash, or a mail
server that is down, loses none of them and none is made twice.

Webhook subscribers get a ``status_page.update`` event per page (public fields only,
:func:`interlock.domain.subscribers.public_event_data`), delivered to their endpoint
alone by the webhook engine: signed, retried, its attempts listed under
``/api/v1/endpoints/{id}/attempts``. It is not fanned out to other endpoints (which
have ``incident.public_update``).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime

from interlock.domain import subscribers as rules
from interlock.domain.delivery import Delivery, DeliveryStatus, Trigger
from interlock.domain.errors import BadRequest, Conflict, InvalidInput, NotFound
from interlock.domain.events import Event, EventType
from interlock.domain.ids import has_prefix, new_id
from interlock.domain.mail import OutgoingMail, checked_address
from interlock.domain.pagination import Page, check_limit
from interlock.domain.status_pages import Component, PublicUpdate, StatusPage
from interlock.domain.subscribers import (
    Links,
    Subscriber,
    SubscriberKind,
    SubscriberStatus,
    TokenPurpose,
)
from interlock.ports.clock import Clock
from interlock.ports.store import Store, Transaction
from interlock.services.endpoints import EndpointService, EndpointSpec


class SubscriberService:
    def __init__(self, store: Store, clock: Clock, endpoints: EndpointService, *,
                 base_url: str, secret: Callable[[], str]) -> None:
        self._store = store
        self._clock = clock
        self._endpoints = endpoints
        self._base_url = base_url.rstrip("/")
        self._secret = secret
        self._key: bytes | None = None

    # -- subscribing ---------------------------------------------------------------------

    def subscribe_email(self, page_id: str, email: str, components: Sequence[str] = (), *,
                        public: bool = False) -> Subscriber:
        """A pending subscriber and its confirmation mail, queued together; nothing else
        is sent to the address until it is confirmed. Asking again while pending sends
        no second mail for :data:`~interlock.domain.subscribers.RESEND_AFTER`; asking
        for an address already confirmed changes nothing (the public form says the
        same either way, so it tells nobody who subscribed)."""
        address = checked_address(email)
        address = address.rpartition("@")[0] + "@" + address.rpartition("@")[2].lower()
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            page = self._page(tx, page_id, public=public)
            followed = _checked_components(tx, page, components)
            current = tx.subscribers.find_email(page.id, address)
            if current is not None and current.status is SubscriberStatus.CONFIRMED:
                return current
            if (current is not None and current.status is SubscriberStatus.PENDING
                    and current.requested_at is not None
                    and now - current.requested_at < rules.RESEND_AFTER):
                return current
            if current is None:
                subscriber = Subscriber(
                    id=new_id("sub", now), page_id=page.id, kind=SubscriberKind.EMAIL,
                    status=SubscriberStatus.PENDING, components=followed,
                    nonce=secrets.token_urlsafe(24), created_at=now, updated_at=now,
                    email=address, requested_at=now)
                tx.subscribers.insert(subscriber)
            else:
                renewed = current.status is SubscriberStatus.UNSUBSCRIBED
                subscriber = dataclasses.replace(
                    current, status=SubscriberStatus.PENDING, components=followed,
                    nonce=secrets.token_urlsafe(24) if renewed else current.nonce,
                    updated_at=now, requested_at=now, unsubscribed_at=None)
                tx.subscribers.save(subscriber)
            tx.mail.insert_many([self._confirmation(tx, subscriber, page, now)])
        return subscriber

    def subscribe_webhook(self, page_id: str, url: str, components: Sequence[str] = ()
                          ) -> tuple[Subscriber, str]:
        """A webhook subscriber, active at once, and its signing secret (shown once).
        The URL is checked as any endpoint's is (shape, and where it resolves)."""
        with self._store.transaction() as tx:
            page = self._page(tx, page_id)
            followed = _checked_components(tx, page, components)
        endpoint, secret = self._endpoints.create(EndpointSpec(
            url=url, description=f"Status page subscriber of {page.name}"[:500],
            event_types=frozenset({EventType.STATUS_PAGE_UPDATE})))
        now = self._clock.now()
        subscriber = Subscriber(
            id=new_id("sub", now), page_id=page.id, kind=SubscriberKind.WEBHOOK,
            status=SubscriberStatus.CONFIRMED, components=followed,
            nonce=secrets.token_urlsafe(24), created_at=now, updated_at=now,
            endpoint_id=endpoint.id, url=endpoint.url, confirmed_at=now)
        try:
            with self._store.transaction(write=True) as tx:
                self._page(tx, page.id)
                tx.subscribers.insert(subscriber)
        except BaseException:
            self._endpoints.delete(endpoint.id)
            raise
        return subscriber, secret

    # -- managing ------------------------------------------------------------------------

    def list(self, page_id: str, *, cursor: str | None, limit: int) -> Page[Subscriber]:
        limit = check_limit(limit)
        if cursor is not None and not has_prefix(cursor, "sub"):
            raise BadRequest("cursor is not one this API issued")
        with self._store.transaction() as tx:
            self._page(tx, page_id)
            rows = tx.subscribers.list(page_id, after=cursor, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more else None)

    def get(self, page_id: str, subscriber_id: str) -> Subscriber:
        with self._store.transaction() as tx:
            return _subscriber(tx, page_id, subscriber_id)

    def delete(self, page_id: str, subscriber_id: str) -> None:
        """Forget a subscriber (a webhook one with its endpoint and what it queued)."""
        with self._store.transaction(write=True) as tx:
            subscriber = _subscriber(tx, page_id, subscriber_id)
            if subscriber.endpoint_id is not None:
                tx.endpoints.delete(subscriber.endpoint_id)
            tx.subscribers.delete(subscriber.id)

    # -- links in mails ------------------------------------------------------------------

    def by_token(self, slug: str, token: str, purpose: TokenPurpose
                 ) -> tuple[Subscriber, StatusPage]:
        """The subscriber and page a link names, or NotFound (a forged, stale or
        mistyped link): nothing changes."""
        with self._store.transaction() as tx:
            return self._verified(tx, slug, token, purpose)

    def confirm(self, slug: str, token: str) -> Subscriber:
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            subscriber, _ = self._verified(tx, slug, token, TokenPurpose.CONFIRM)
            if subscriber.status is SubscriberStatus.CONFIRMED:
                return subscriber
            if subscriber.status is SubscriberStatus.UNSUBSCRIBED:
                raise Conflict("this subscription was cancelled; subscribe again")
            if (subscriber.requested_at is None
                    or now - subscriber.requested_at > rules.CONFIRM_FOR):
                raise Conflict("this confirmation link has expired; subscribe again")
            confirmed = dataclasses.replace(subscriber, status=SubscriberStatus.CONFIRMED,
                                            confirmed_at=now, updated_at=now)
            tx.subscribers.save(confirmed)
        return confirmed

    def unsubscribe(self, slug: str, token: str) -> Subscriber:
        """Idempotent: a second click (or a mail client's POST) changes nothing."""
        now = self._clock.now()
        with self._store.transaction(write=True) as tx:
            subscriber, _ = self._verified(tx, slug, token, TokenPurpose.UNSUBSCRIBE)
            if subscriber.status is SubscriberStatus.UNSUBSCRIBED:
                return subscriber
            gone = dataclasses.replace(subscriber, status=SubscriberStatus.UNSUBSCRIBED,
                                       unsubscribed_at=now, updated_at=now)
            tx.subscribers.save(gone)
        return gone

    # -- fan-out (runs inside the webhook dispatcher's transaction) ----------------------

    def fan_out(self, tx: Transaction, events: Sequence[Event], now: datetime) -> None:
        for event in events:
            if event.type is EventType.INCIDENT_PUBLIC_UPDATE and event.incident_id:
                self._fan_out_update(tx, event, now)

    def _fan_out_update(self, tx: Transaction, event: Event, now: datetime) -> None:
        data = event.data.get("public_update") or {}
        update_id = data.get("id") if isinstance(data, dict) else None
        incident_id = event.incident_id or ""
        update = next((item for item in tx.status_pages.updates([incident_id]).get(
            incident_id, []) if item.id == update_id), None)
        incident = tx.incidents.get(incident_id)
        if update is None or incident is None or incident.is_private:
            return  # withdrawn, or made private since: nothing goes out
        pages = tx.status_pages.get_pages(update.page_ids)
        subscribers = tx.subscribers.confirmed(list(pages))
        if not subscribers:
            return
        views = {view.page_id: view for view in tx.status_pages.incident_views(incident_id)}
        # A subscriber's endpoint disabled after failing for days gets nothing new, as
        # any endpoint (re-enabling it through /endpoints starts it afresh).
        enabled = ({endpoint.id for endpoint in tx.endpoints.enabled()}
                   if any(item.kind is SubscriberKind.WEBHOOK for item in subscribers)
                   else set())
        mails: list[OutgoingMail] = []
        for page in pages.values():
            names = {component.id: component.name
                     for component in tx.status_pages.components(page.id)}
            view = views.get(page.id)
            touched = [*update.components, *(view.components if view else {})]
            touched = [component_id for component_id in touched if component_id in names]
            reached = [subscriber for subscriber in subscribers
                       if subscriber.page_id == page.id and subscriber.follows(touched)]
            links = Links(page=self._page_url(page), unsubscribe="")
            for subscriber in reached:
                if subscriber.kind is SubscriberKind.EMAIL:
                    mails.append(rules.update_mail(
                        new_id("mail", now), subscriber, page, update, names,
                        dataclasses.replace(links, unsubscribe=self._link(
                            page, subscriber, TokenPurpose.UNSUBSCRIBE)), now))
            hooks = [subscriber for subscriber in reached
                     if subscriber.kind is SubscriberKind.WEBHOOK
                     and subscriber.endpoint_id in enabled]
            if hooks:
                self._deliver(tx, event, page, update, view.impact if view else "none",
                              names, hooks, now)
        tx.mail.insert_many([dataclasses.replace(mail, next_attempt_at=now)
                             for mail in mails])

    def _deliver(self, tx: Transaction, source: Event, page: StatusPage,
                 update: PublicUpdate, impact: str, names: dict[str, str],
                 hooks: Sequence[Subscriber], now: datetime) -> None:
        event = tx.events.append(Event(
            id=new_id("evt", now), type=EventType.STATUS_PAGE_UPDATE, occurred_at=now,
            origin=source.origin, incident_id=update.incident_id,
            incident_version=source.incident_version,
            data=rules.public_event_data(page, update, impact, names, self._page_url(page))))
        tx.events.mark_dispatched([event.sequence], now)
        queued = tx.deliveries.pending_pairs({update.incident_id})
        deliveries = []
        for subscriber in hooks:
            endpoint_id = subscriber.endpoint_id or ""
            waits = (endpoint_id, update.incident_id) in queued
            queued.add((endpoint_id, update.incident_id))
            deliveries.append(Delivery(
                id=new_id("dlv", now), event_id=event.id, event_sequence=event.sequence,
                endpoint_id=endpoint_id, incident_id=update.incident_id,
                status=DeliveryStatus.PENDING, attempts=0,
                next_attempt_at=None if waits else now, trigger=Trigger.SCHEDULED,
                created_at=now))
        tx.deliveries.insert_many(deliveries)

    # -- helpers -------------------------------------------------------------------------

    def _confirmation(self, tx: Transaction, subscriber: Subscriber, page: StatusPage,
                      now: datetime) -> OutgoingMail:
        names = {component.id: component.name
                 for component in tx.status_pages.components(page.id)}
        links = Links(page=self._page_url(page),
                      unsubscribe=self._link(page, subscriber, TokenPurpose.UNSUBSCRIBE),
                      confirm=self._link(page, subscriber, TokenPurpose.CONFIRM))
        mail = rules.confirmation_mail(
            new_id("mail", now), subscriber, page,
            [names[component_id] for component_id in subscriber.components
             if component_id in names], links, now)
        return dataclasses.replace(mail, next_attempt_at=now)

    def sample_mail(self, page: StatusPage, update: PublicUpdate,
                    components: Sequence[Component]) -> OutgoingMail:
        """The mail a confirmed subscriber of the whole page would get for ``update``,
        for the composer's preview (its unsubscribe link is a placeholder)."""
        now = self._clock.now()
        reader = Subscriber(id="sub_preview", page_id=page.id, kind=SubscriberKind.EMAIL,
                            status=SubscriberStatus.CONFIRMED, components=(), nonce="",
                            created_at=now, updated_at=now, email="subscriber@example.com")
        links = Links(page=self._page_url(page),
                      unsubscribe=f"{self._page_url(page)}/unsubscribe?token=…")
        return rules.update_mail("mail_preview", reader, page, update,
                                 {component.id: component.name for component in components},
                                 links, now)

    def _page_url(self, page: StatusPage) -> str:
        return f"{self._base_url}/status/{page.slug}"

    def _link(self, page: StatusPage, subscriber: Subscriber, purpose: TokenPurpose) -> str:
        path = "subscribe/confirm" if purpose is TokenPurpose.CONFIRM else "unsubscribe"
        token = rules.make_token(self._token_key(), purpose, subscriber)
        return f"{self._page_url(page)}/{path}?token={token}"

    def _token_key(self) -> bytes:
        if self._key is None:
            self._key = rules.token_key(self._secret())
        return self._key

    def _verified(self, tx: Transaction, slug: str, token: str, purpose: TokenPurpose
                  ) -> tuple[Subscriber, StatusPage]:
        subscriber_id = rules.token_subscriber(token)
        subscriber = tx.subscribers.get(subscriber_id) if subscriber_id else None
        page = tx.status_pages.find_page(slug)
        if (subscriber is None or page is None or subscriber.page_id != page.id
                or not rules.token_matches(self._token_key(), purpose, token, subscriber)):
            raise NotFound("this link is not valid (mistyped, or from a cancelled "
                           "subscription)")
        return subscriber, page

    def _page(self, tx: Transaction, page_id: str, *, public: bool = False) -> StatusPage:
        page = tx.status_pages.get_page(page_id)
        if page is None or (public and not page.is_public):
            raise NotFound(f"no status page {page_id}")
        return page


def _checked_components(tx: Transaction, page: StatusPage, given: Sequence[str]
                        ) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(given))
    if len(chosen) > rules.COMPONENTS_MAX:
        raise InvalidInput(f"at most {rules.COMPONENTS_MAX} components", errors=[
            {"field": "components", "message": f"at most {rules.COMPONENTS_MAX}"}])
    if not chosen:
        return ()
    known: dict[str, Component] = tx.status_pages.get_components(chosen)
    unknown = [component_id for component_id in chosen
               if component_id not in known or known[component_id].page_id != page.id]
    if unknown:
        raise InvalidInput(f"not components of {page.name}: {', '.join(unknown)[:200]}",
                           errors=[{"field": "components",
                                    "message": f"unknown component {component_id}"}
                                   for component_id in unknown[:20]])
    return chosen


def _subscriber(tx: Transaction, page_id: str, subscriber_id: str) -> Subscriber:
    subscriber = tx.subscribers.get(subscriber_id)
    if subscriber is None or subscriber.page_id != page_id:
        raise NotFound(f"no subscriber {subscriber_id} on status page {page_id}")
    return subscriber
