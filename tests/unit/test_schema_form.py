"""Forms drawn from JSON Schema: what each kind of property becomes, and a form posted
back becoming the JSON object the service takes, with every problem beside its field.

The models here are pydantic models of the shapes connector and source kinds use
(URLs, bounded numbers, enums, secrets, lists, nested and optional objects, free-form
maps), so the renderer is proven on the schemas pydantic really writes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

import pytest
from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, StrictFloat, StrictInt
from starlette.datastructures import FormData

from interlock.domain.errors import InvalidInput
from interlock.web.pages import TEMPLATES
from interlock.web.schema_form import SchemaForm, Widget, place, problems_of


class Method(StrEnum):
    GET = "GET"
    POST = "POST"


class Request(BaseModel):
    method: Method = Field(Method.POST, description="The HTTP method")
    url: AnyHttpUrl = Field(title="URL", description="Where the request goes")
    body: str = Field("", json_schema_extra={"format": "template"})


class Settings(BaseModel):
    url: AnyHttpUrl = Field(title="Alertmanager URL", description="Its base URL",
                            examples=["http://alertmanager:9093"])
    duration_minutes: int = Field(240, ge=1, le=10_080, title="Silence length")
    ratio: float | None = None
    timeout: (Annotated[StrictInt, Field(ge=1, le=60)]
              | Annotated[StrictFloat, Field(ge=0.5, le=30)]) = 5
    notify: bool = True
    region: Literal["eu", "us"] | None = None
    labels: list[str] = Field(default_factory=list, description="Labels to copy")
    events: list[Literal["created", "resolved"]] = ["created"]
    headers: dict[str, str] = Field(default_factory=dict)
    create: Request
    fetch: Request | None = Field(None, description="Optional: read the current state")


class Credentials(BaseModel):
    account: str = Field(max_length=4000, description="Not a secret: shown back")
    api_token: SecretStr = Field(description="An API token")
    webhook_secret: SecretStr | None = None


def _settings() -> SchemaForm:
    return SchemaForm(Settings.model_json_schema(), "settings")


def _widgets(form: SchemaForm) -> dict[str, Widget]:
    return {node.name: node.widget for node in _all(form.nodes)}


def _all(nodes: Any) -> list[Any]:
    return [item for node in nodes for item in (node, *_all(node.children))]


def _posted(**fields: str | list[str]) -> FormData:
    pairs: list[tuple[str, str]] = []
    for name, value in fields.items():
        pairs.extend((name, item) for item in (value if isinstance(value, list) else [value]))
    return FormData(pairs)


GOOD = {
    "settings.url": "http://127.0.0.1:9093", "settings.duration_minutes": "90",
    "settings.ratio": "0.5", "settings.timeout": "2.5", "settings.notify": "on",
    "settings.region": "eu",
    "settings.labels": "team\r\n\r\n service \n", "settings.events": ["created", "resolved"],
    "settings.headers": '{"X-Team": "sre"}', "settings.create.method": "GET",
    "settings.create.url": "http://127.0.0.1:9/issues",
    "settings.create.body": '{"title": {{ title|tojson }}}\r\n',
}


def test_each_property_gets_the_input_its_type_needs() -> None:
    form = _settings()
    assert _widgets(form) == {
        "settings.url": Widget.URL, "settings.duration_minutes": Widget.NUMBER,
        "settings.ratio": Widget.NUMBER, "settings.timeout": Widget.NUMBER,
        "settings.notify": Widget.CHECKBOX,
        "settings.region": Widget.SELECT, "settings.labels": Widget.LINES,
        "settings.events": Widget.CHOICES, "settings.headers": Widget.JSON,
        "settings.create": Widget.GROUP, "settings.create.method": Widget.SELECT,
        "settings.create.url": Widget.URL, "settings.create.body": Widget.TEXTAREA,
        "settings.fetch": Widget.GROUP, "settings.fetch.method": Widget.SELECT,
        "settings.fetch.url": Widget.URL, "settings.fetch.body": Widget.TEXTAREA,
    }
    nodes = {node.name: node for node in _all(form.nodes)}
    url, minutes = nodes["settings.url"], nodes["settings.duration_minutes"]
    assert (url.label, url.help, url.required, url.placeholder) == (
        "Alertmanager URL", "Its base URL", True, "http://alertmanager:9093")
    assert (minutes.label, minutes.minimum, minutes.maximum, minutes.integer) == (
        "Silence length", 1, 10_080, True)
    timeout = nodes["settings.timeout"]  # int | float: one number input
    assert (timeout.integer, timeout.minimum, timeout.maximum) == (False, 0.5, 60)
    assert nodes["settings.region"].choices == ("eu", "us") and nodes["settings.region"].nullable
    # A $ref'd property is labelled by its own name, not by its model's class name.
    assert nodes["settings.create"].label == "Create" and nodes["settings.fetch"].nullable
    assert nodes["settings.create.method"].choices == ("GET", "POST")


def test_secrets_are_password_inputs_never_filled_in() -> None:
    form = SchemaForm(Credentials.model_json_schema(), "credentials")
    assert _widgets(form) == {"credentials.account": Widget.TEXT,  # long, still one line
                              "credentials.api_token": Widget.SECRET,
                              "credentials.webhook_secret": Widget.SECRET}
    texts = form.texts({"account": "bot@example.com", "api_token": "tok-SECRET",
                        "webhook_secret": "whs-SECRET"})
    fields = form.fields({**texts, "credentials.api_token": "typed-SECRET"},
                         secrets_set={"credentials.api_token"})
    assert [(item.value, item.secret_set) for item in fields] == [
        ("bot@example.com", False), ("", True), ("", False)]


def test_a_new_form_shows_the_defaults_and_an_edit_form_the_stored_values() -> None:
    form = _settings()
    blank = form.texts(None)
    assert blank["settings.duration_minutes"] == "240" and blank["settings.notify"] == "on"
    assert blank["settings.events"] == ["created"] and blank["settings.headers"] == ""
    assert blank["settings.fetch.method"] == "POST" and blank["settings.url"] == ""
    stored = form.texts({"url": "http://am:9093", "duration_minutes": 30, "notify": False,
                         "labels": ["a", "b"], "headers": {"X": "1"},
                         "create": {"method": "GET", "url": "http://t/x", "body": "{}"}})
    assert stored["settings.duration_minutes"] == "30" and stored["settings.notify"] == ""
    assert stored["settings.labels"] == "a\nb" and '"X": "1"' in stored["settings.headers"]
    assert stored["settings.create.method"] == "GET"


def test_a_posted_form_becomes_typed_json_the_model_accepts() -> None:
    form = _settings()
    value = form.read(form.posted(_posted(**GOOD)), editing=False)
    assert value == {
        "url": "http://127.0.0.1:9093", "duration_minutes": 90, "ratio": 0.5, "timeout": 2.5,
        "notify": True, "region": "eu", "labels": ["team", "service"],
        "events": ["created", "resolved"], "headers": {"X-Team": "sre"},
        "create": {"method": "GET", "url": "http://127.0.0.1:9/issues",
                   "body": '{"title": {{ title|tojson }}}\n'},
        "fetch": None,  # only its defaults were left: the optional group is left out
    }
    Settings.model_validate(value)
    # Stored back and shown again, it reads the same.
    assert form.read(form.texts(value), editing=False) == value


def test_empty_inputs_clear_take_the_default_or_are_required() -> None:
    form = _settings()
    posted = {**GOOD, "settings.ratio": "", "settings.region": "",
              "settings.duration_minutes": " ", "settings.headers": ""}
    del posted["settings.notify"], posted["settings.events"]  # unticked: not posted
    value = form.read(form.posted(_posted(**posted)), editing=False)
    assert (value["ratio"], value["region"], value["duration_minutes"]) == (None, None, 240)
    assert (value["notify"], value["events"], value["headers"]) == (False, [], {})


def test_every_unreadable_field_is_named_at_once() -> None:
    form = _settings()
    posted = {**GOOD, "settings.url": "", "settings.duration_minutes": "two hours",
              "settings.ratio": "lots", "settings.region": "mars",
              "settings.headers": "{not json", "settings.events": ["created", "exploded"],
              "settings.fetch.body": "{}"}
    with pytest.raises(InvalidInput) as refused:
        form.read(form.posted(_posted(**posted)), editing=False)
    problems = problems_of(refused.value)
    assert problems == {
        "settings.url": "required",
        "settings.duration_minutes": "a whole number, not 'two hours'",
        "settings.ratio": "a number, not 'lots'",
        "settings.region": "one of eu, us",
        "settings.events": "not one of the choices: exploded",
        "settings.headers": problems["settings.headers"],
        # Touching the optional group makes it wanted, and its URL required.
        "settings.fetch.url": "required",
    }
    assert problems["settings.headers"].startswith("not valid JSON")
    with pytest.raises(InvalidInput) as bounds:  # the schema's bounds are checked too
        form.read(form.posted(_posted(**{**GOOD, "settings.duration_minutes": "0"})),
                  editing=False)
    assert problems_of(bounds.value) == {"settings.duration_minutes": "at least 1"}


def test_an_empty_secret_is_required_when_creating_and_kept_when_editing() -> None:
    form = SchemaForm(Credentials.model_json_schema(), "credentials")
    with pytest.raises(InvalidInput) as refused:
        form.read(form.posted(_posted(**{"credentials.account": "bot"})), editing=False)
    assert problems_of(refused.value) == {"credentials.api_token": "required"}
    assert form.read(form.posted(_posted(**{"credentials.account": "bot"})),
                     editing=True) == {"account": "bot"}
    assert form.read(form.posted(_posted(**{"credentials.account": "bot",
                                            "credentials.api_token": " tok \n"})),
                     editing=True) == {"account": "bot", "api_token": "tok"}


def test_the_services_problems_land_beside_their_fields_keeping_what_was_typed() -> None:
    form = _settings()
    typed = form.posted(_posted(**{**GOOD, "settings.url": "http://10.0.0.1:9093"}))
    problems = {"settings.url": "a private address", "settings.headers.X-Team": "too long",
                "settings.create.url": "unreachable", "name": "taken", "settings": "odd"}
    fields = {item.node.name: item for item in form.fields(typed, problems)}
    assert (fields["settings.url"].value, fields["settings.url"].error) == (
        "http://10.0.0.1:9093", "a private address")
    assert fields["settings.headers"].error == "X-Team: too long"
    [method, url, _body] = fields["settings.create"].children
    assert (url.error, method.value, method.error) == ("unreachable", "GET", None)
    assert fields["settings.events"].ticked == ("created", "resolved")
    leftover = place(problems, form.names())[1]
    assert leftover == {"name": "taken", "settings": "odd"}


def test_the_drawn_form_has_labels_help_required_marks_and_problems() -> None:
    form = _settings()
    credentials = SchemaForm(Credentials.model_json_schema(), "credentials")
    page = TEMPLATES.from_string(
        '{% import "_schema_form.html" as schema %}'
        "{{ schema.fields(settings, editing=True) }}{{ schema.fields(credentials, True) }}"
    ).render(settings=form.fields(form.texts(None), {"settings.url": "a private address"}),
             credentials=credentials.fields(credentials.texts(None),
                                            secrets_set={"credentials.api_token"}))
    assert '<label for="field-settings-url">Alertmanager URL<span class="required"' in page
    assert 'type="url" placeholder="http://alertmanager:9093" required' in page
    assert 'aria-describedby="help-field-settings-url problem-field-settings-url"' in page
    assert 'id="problem-field-settings-url">a private address</p>' in page
    assert 'type="number" step="1" class="short" min="1" max="10080"' in page
    assert 'name="settings.notify" value="on" checked' in page
    assert '<option value="POST" selected>POST</option>' in page
    assert '<legend>Fetch <span class="muted small">(optional' in page
    fetch_url = page.split('name="settings.fetch.url"')[1].split(">")[0]
    assert "required" not in fetch_url  # inside an optional group: not insisted on
    token = page.split('name="credentials.api_token"')[1].split(">")[0]
    assert 'type="password"' in token and "required" not in token  # set: kept if empty
    assert '<span class="badge ok">set</span>' in page
    assert '<span class="badge unset">not set</span>' in page


def test_a_hand_written_schema_draws_its_form_too() -> None:
    """Older spellings other generators write: type lists, allOf around a $ref,
    ``definitions``; a union that is not just numbers is edited as JSON."""
    form = SchemaForm({
        "type": "object", "required": ["level"],
        "definitions": {"Level": {"type": "string", "enum": ["low", "high"]}},
        "properties": {
            "retries": {"type": ["integer", "null"], "maximum": 5},
            "level": {"allOf": [{"$ref": "#/definitions/Level"}], "description": "How loud"},
            "anything": {"anyOf": [{"type": "string"}, {"type": "object"}]},
            "hidden": {"type": "string", "readOnly": True},
        }}, "x")
    nodes = {node.name: node for node in form.nodes}
    assert list(nodes) == ["x.retries", "x.level", "x.anything"]
    assert (nodes["x.retries"].widget, nodes["x.retries"].nullable) == (Widget.NUMBER, True)
    assert (nodes["x.level"].widget, nodes["x.level"].help) == (Widget.SELECT, "How loud")
    assert nodes["x.anything"].widget is Widget.JSON
    assert form.read({"x.retries": "", "x.level": "high", "x.anything": '"a"'},
                     editing=False) == {"retries": None, "level": "high", "anything": "a"}


class Endpoint(BaseModel):
    url: AnyHttpUrl
    token: SecretStr


class HttpSettings(BaseModel):
    requests: dict[str, Request] = Field(default_factory=dict, description="By event type")
    secret_headers: dict[str, SecretStr] = Field(default_factory=dict)
    mirrors: list[Endpoint] = Field(default_factory=list)


def test_maps_and_lists_of_objects_are_json_and_secrets_inside_are_never_shown() -> None:
    form = SchemaForm(HttpSettings.model_json_schema(), "settings")
    nodes = {node.name: node for node in form.nodes}
    assert {name: (node.widget, node.secret) for name, node in nodes.items()} == {
        "settings.requests": (Widget.JSON, False),
        "settings.secret_headers": (Widget.JSON, True),
        "settings.mirrors": (Widget.JSON, True),
    }
    # A skeleton of what each takes, as its placeholder: required keys, one entry.
    assert nodes["settings.requests"].placeholder == '{"name": {"url": "…"}}'
    assert nodes["settings.mirrors"].placeholder == '[{"url": "…", "token": "…"}]'
    stored = {"requests": {"incident.created": {"method": "POST", "url": "http://t/x"}},
              "secret_headers": {"Authorization": "Bearer SECRET"},
              "mirrors": [{"url": "http://m/", "token": "SECRET"}]}
    texts = form.texts(stored)
    assert "incident.created" in str(texts["settings.requests"])
    assert texts["settings.secret_headers"] == texts["settings.mirrors"] == ""
    assert form.read(texts, editing=True) == {"requests": stored["requests"]}
    page = TEMPLATES.from_string('{% import "_schema_form.html" as schema %}'
                                 "{{ schema.fields(items, editing=True) }}").render(
        items=form.fields(texts))
    assert "SECRET" not in page and "holds secrets: never shown" in page


class Comments(BaseModel):
    request: Request | None = None
    items: str = "@"


class Fetch(BaseModel):
    request: Request
    comments: Comments | None = None


class Check(BaseModel):
    header: str
    algorithm: Literal["sha256", "sha1"] = "sha256"
    tolerance_seconds: int = Field(300, ge=1)


class Deep(BaseModel):
    fetch: Fetch | None = None
    check: Check | None = None


def test_optional_groups_left_as_drawn_stay_unset_however_deep() -> None:
    """A new form shows each optional group with its defaults filled in; posted back
    untouched, the groups are left out, not refused for their empty required fields."""
    form = SchemaForm(Deep.model_json_schema(), "settings")
    blank = form.texts(None)
    assert blank["settings.check.algorithm"] == "sha256"
    assert form.read(blank, editing=False) == {"fetch": None, "check": None}
    wanted = {**blank, "settings.fetch.request.url": "http://t/x",
              "settings.fetch.comments.items": "comments"}
    assert form.read(wanted, editing=False) == {"check": None, "fetch": {
        "request": {"method": "POST", "url": "http://t/x", "body": ""},
        "comments": {"request": None, "items": "comments"}}}
    with pytest.raises(InvalidInput) as refused:
        form.read({**blank, "settings.check.tolerance_seconds": "60"}, editing=False)
    assert problems_of(refused.value) == {"settings.check.header": "required"}
