"""`gos-websocket catalogue`: an AsyncAPI 3.0 document and TypeScript types of every route."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gos_web_socket.app.auth.authorization import RouteRules
from gos_web_socket.app.catalogue import asyncapi_document, write_catalogue
from gos_web_socket.app.exceptions import ConfigurationError
from gos_web_socket.app.router import Router, load_routes_from_mapping
from tests.unit.test_cli import run

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE.parent / "interop" / "node_modules"

PROGRAM = """\
import type { ChannelOf, ChatMessage, ParamsOf, PayloadOf, Routes } from "./channels";

export const channel: ChannelOf<"acme_chat"> = "acme/chat/lobby";
export const message: PayloadOf<"acme_chat"> = { author: "ann", text: "hi", sent_at: null };
export const params: ParamsOf<"acme_user"> = { user_id: "42" };
export const rule: Routes["acme_user"]["subscribe"] = "owner:user_id";
export const anything: PayloadOf<"acme_topic"> = { free: ["form"] };
// @ts-expect-error: text is required by ChatMessage
export const missing: ChatMessage = { author: "ann" };
// @ts-expect-error: a channel of another route
export const other: ChannelOf<"acme_chat"> = "acme/channel/lobby";
// @ts-expect-error: the rule of acme_user's publish is "nobody"
export const publish: Routes["acme_user"]["publish"] = "anyone";
"""


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files of `gos-websocket catalogue --out DIR` for the shipped demo routes."""
    folder = tmp_path_factory.mktemp("catalogue")
    result = run("catalogue", "--out", str(folder))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"wrote {folder / name}" for name in ("asyncapi.json", "asyncapi.yaml", "channels.d.ts")
    ]
    return folder


@pytest.fixture(scope="module")
def document(catalogue: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((catalogue / "asyncapi.json").read_text())
    return loaded


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_route_is_a_channel_with_its_parameters_and_payload(
    document: dict[str, Any], catalogue: Path
) -> None:
    """Each route is a channel at its pattern; parameters carry their requirement; the typed
    route's message is its model's JSON schema; the YAML file says the same as the JSON one."""
    assert document["asyncapi"] == "3.0.0"
    assert list(document["channels"]) == [
        "acme_topic",
        "acme_rpc",
        "acme_user",
        "acme_chat",
        "acme_room",
    ]
    chat = document["channels"]["acme_chat"]
    assert chat["address"] == "acme/chat/{room}"
    assert chat["parameters"]["room"]["x-gos-requirement"] == "[a-zA-Z0-9_-]+"
    event = resolve(document, chat["messages"]["event"]["$ref"])
    schema = resolve(document, event["payload"]["$ref"])
    assert schema["required"] == ["author", "text"]
    assert schema["properties"]["author"]["maxLength"] == 40
    assert schema["additionalProperties"] is False
    untyped = resolve(document, document["channels"]["acme_topic"]["messages"]["event"]["$ref"])
    assert "$ref" not in untyped["payload"]  # any JSON
    assert yaml.safe_load((catalogue / "asyncapi.yaml").read_text()) == document
    for ref in refs(document):
        resolve(document, ref)  # a KeyError here is a dangling reference


def test_auth_rules_say_who_may_subscribe_publish_and_call(document: dict[str, Any]) -> None:
    """acme_user: only its owner subscribes and no operation publishes; acme_rpc is a call
    with a reply; acme_chat: anyone subscribes (the server sends) and publishes (it receives)."""
    operations = document["operations"]
    assert document["channels"]["acme_user"]["x-gos-auth"] == {
        "subscribe": "owner:user_id",
        "publish": "nobody",
    }
    assert operations["acme_user.subscribe"]["x-gos-auth"] == "owner:user_id"
    assert "acme_user.publish" not in operations
    call = operations["acme_rpc.call"]
    assert call["action"] == "receive" and "reply" in call
    assert "acme_rpc.subscribe" not in operations
    assert operations["acme_chat.subscribe"]["action"] == "send"
    assert operations["acme_chat.publish"]["action"] == "receive"


def node_tool(name: str) -> list[str]:
    if not (NODE_MODULES / ".bin" / name).exists():
        pytest.fail("tests/interop/node_modules is incomplete: run `make npm-deps`")
    if shutil.which("node") is None:
        pytest.fail("node is not installed; the npm tests need Node 20")
    return [str(NODE_MODULES / ".bin" / name)]  # a node script or, for esbuild, its binary


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    node_tool("tsc")  # the npm packages are there
    return subprocess.run(
        ["node", str(HERE / "validate_asyncapi.mjs"), str(path)],
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.npm
def test_the_document_validates_against_the_published_asyncapi_schema(
    catalogue: Path, document: dict[str, Any], tmp_path: Path
) -> None:
    """asyncapi.json passes the AsyncAPI 3.0.0 JSON schema of @asyncapi/specs (ajv); a document
    broken on purpose does not, so the check is real."""
    result = validate(catalogue / "asyncapi.json")
    assert (result.returncode, result.stdout.strip()) == (0, "valid"), result.stdout + result.stderr
    broken = json.loads(json.dumps(document))
    broken["operations"]["acme_chat.subscribe"]["action"] = "subscribe"  # an AsyncAPI 2 word
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    result = validate(tmp_path / "broken.json")
    assert result.returncode == 1 and "/operations/acme_chat.subscribe/action" in result.stdout


def tsc(folder: Path) -> subprocess.CompletedProcess[str]:
    command = node_tool("tsc")
    options = ["--noEmit", "--strict", "--target", "es2022", "--module", "esnext"]
    return subprocess.run(
        [*command, *options, "--moduleResolution", "bundler", str(folder / "program.ts")],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.npm
def test_a_typescript_program_using_the_types_compiles(catalogue: Path, tmp_path: Path) -> None:
    """tsc --strict compiles a program using channels.d.ts, whose @ts-expect-error lines prove
    the types refuse a missing field, another route's channel and a wrong auth rule; a push
    with a wrong field type fails to compile, pointing at that field."""
    shutil.copy(catalogue / "channels.d.ts", tmp_path / "channels.d.ts")
    (tmp_path / "program.ts").write_text(PROGRAM)
    result = tsc(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    wrong = 'import type { ChatMessage } from "./channels";\n'
    wrong += 'export const m: ChatMessage = { author: 1, text: "hi" };\n'
    (tmp_path / "program.ts").write_text(wrong)
    result = tsc(tmp_path)
    column = wrong.splitlines()[1].index("author") + 1
    assert result.returncode != 0 and f"program.ts(2,{column}): error TS2322" in result.stdout


def test_a_route_without_callback_is_a_call_that_names_who_may_register() -> None:
    """A route serving the procedures clients register (no callback) is described as a call
    whose x-gos-auth also says who may register; an empty servers map stays empty."""
    routes = {
        "procs": {
            "pattern": "app/procs/{name}",
            "options": {"auth": {"register": "roles:ROLE_WORKER", "call": "authenticated"}},
        }
    }
    router = Router(load_routes_from_mapping(routes))
    rules = RouteRules.from_router(router)
    document = asyncapi_document(router, rules, title="t", version="1", servers={})
    assert document["channels"]["procs"]["x-gos-auth"] == {
        "call": "authenticated",
        "register": "roles:ROLE_WORKER",
    }
    assert list(document["operations"]) == ["procs.call"]
    assert document["servers"] == {}


def test_routes_whose_channel_keys_collide_are_refused_in_one_line(tmp_path: Path) -> None:
    """Routes chat.room and chat_room would share the channel key chat_room: the catalogue
    refuses them with one ConfigurationError line naming both (no crash, no overwrite)."""
    routes = {
        "chat.room": {"pattern": "chat/{room}", "callback": "acme.topic"},
        "chat_room": {"pattern": "room/{room}", "callback": "acme.topic"},
    }
    router = Router(load_routes_from_mapping(routes))
    with pytest.raises(ConfigurationError) as raised:
        write_catalogue(router, tmp_path, servers={})
    assert len(raised.value.problems) == 1
    assert "chat.room" in str(raised.value) and "chat_room" in str(raised.value)


def test_two_models_of_one_class_name_are_refused_in_one_line() -> None:
    """Two different payload models named Message would overwrite each other's schema: the
    catalogue refuses them in one line naming both; one model on two routes is fine."""
    twins = "tests.catalogue.twin_models"
    routes = {
        "left": {"pattern": "l/{r}", "callback": "t", "payload": f"{twins}:Left.Message"},
        "right": {"pattern": "r/{r}", "callback": "t", "payload": f"{twins}:Right.Message"},
        "again": {"pattern": "a/{r}", "callback": "t", "payload": f"{twins}:Left.Message"},
    }
    router = Router(load_routes_from_mapping(routes))
    rules = RouteRules.from_router(router)
    with pytest.raises(ConfigurationError) as raised:
        asyncapi_document(router, rules, title="t", version="1", servers={})
    assert len(raised.value.problems) == 1
    assert "Left.Message" in str(raised.value) and "Right.Message" in str(raised.value)
    del routes["right"]
    router = Router(load_routes_from_mapping(routes))
    document = asyncapi_document(router, rules, title="t", version="1", servers={})
    assert list(document["components"]["schemas"]) == ["Message"]
