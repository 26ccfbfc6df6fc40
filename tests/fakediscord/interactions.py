"""INTERACTION_CREATE payloads, built the way a Discord client would from what the bot registered.

Pure functions: the server looks things up (the synced command, the message a button is on, the modal
the bot showed) and these turn a test's plain arguments into Discord's shapes. A value Discord's UI
would never let a user send (an unknown option, a missing required one, a click on a disabled button,
an empty required text input) raises here, so a wrong test fails loudly instead of testing nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .payloads import FakeAttachment, FakeChannel, FakeGuild, FakeMessage, FakeRole, FakeUser

__all__ = [
    "ATTACHMENT_SIZE_LIMIT",
    "command_data",
    "component_data",
    "context_menu_data",
    "interaction_payload",
    "modal_submission",
]

#: Interaction types.
APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT = 2, 3, 5
#: Application command option types.
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(1, 12)
#: Component types whose submitted value is a list of ``values``.
SELECT_TYPES = frozenset({3, 5, 6, 7, 8})
ACTION_ROW, TEXT_INPUT, LABEL, FILE_UPLOAD, RADIO_GROUP, CHECKBOX = 1, 4, 18, 19, 21, 23
#: Upload limit of an unboosted guild, in bytes.
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


def interaction_payload(
    *,
    interaction_id: int,
    token: str,
    type: int,
    application_id: int,
    user: FakeUser,
    guild: FakeGuild,
    channel: FakeChannel,
    data: dict[str, Any],
    locale: str = "en-US",
) -> dict[str, Any]:
    """The INTERACTION_CREATE body for ``user`` acting in a guild channel; permissions are resolved."""
    member = guild.member(user.id)
    if member is None:
        raise ValueError(f"user {user.name!r} is not a member of guild {guild.name!r}")
    permissions = guild.permissions_of(user.id)
    return {
        "id": str(interaction_id),
        "application_id": str(application_id),
        "type": type,
        "token": token,
        "version": 1,
        "data": data,
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
        "channel_id": str(channel.id),
        "channel": {**channel.to_payload(), "permissions": str(permissions)},
        "member": member.to_payload(permissions=permissions),
        "app_permissions": str(guild.permissions_of(application_id)),
        "locale": locale,
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }


# -- slash commands ------------------------------------------------------------------------------------


def command_data(command: dict[str, Any], path: list[str], values: Mapping[str, Any], guild: FakeGuild) -> dict[str, Any]:
    """``data`` of a slash command: ``path`` is the command name then any group/subcommand names;
    ``values`` are Python values typed by the synced option schema (a FakeUser for a user option, the
    dict from ``add_attachment`` for an attachment, ...)."""
    resolved: dict[str, dict[str, Any]] = {}
    schema: list[dict[str, Any]] = command.get("options") or []
    leaf_options = _typed_options(schema, path[1:], values, resolved, guild, command["name"])
    data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": 1, "options": leaf_options}
    if resolved:
        data["resolved"] = resolved
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    return data


def _typed_options(
    schema: list[dict[str, Any]],
    subcommands: list[str],
    values: Mapping[str, Any],
    resolved: dict[str, dict[str, Any]],
    guild: FakeGuild,
    where: str,
) -> list[dict[str, Any]]:
    if subcommands:  # nest one level: {"type": 1 or 2, "name": ..., "options": [...]}
        name, rest = subcommands[0], subcommands[1:]
        spec = next((o for o in schema if o["name"] == name and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)), None)
        if spec is None:
            raise ValueError(f"{where!r} has no subcommand {name!r}")
        inner = _typed_options(spec.get("options") or [], rest, values, resolved, guild, f"{where} {name}")
        return [{"type": spec["type"], "name": name, "options": inner}]
    by_name = {spec["name"]: spec for spec in schema}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ValueError(f"{where!r} has no option(s) {unknown!r}; it has {sorted(by_name)!r}")
    missing = [name for name, spec in by_name.items() if spec.get("required") and name not in values]
    if missing:
        raise ValueError(f"{where!r} needs option(s) {missing!r}")
    return [_option(by_name[name], value, resolved, guild) for name, value in values.items()]


def _option(spec: dict[str, Any], value: Any, resolved: dict[str, dict[str, Any]], guild: FakeGuild) -> dict[str, Any]:
    kind = spec["type"]
    if kind in (STRING, INTEGER, NUMBER, BOOLEAN):
        value = _primitive(spec, value)
    elif kind == ATTACHMENT:
        payload = value.to_payload() if isinstance(value, FakeAttachment) else dict(value)
        resolved.setdefault("attachments", {})[payload["id"]] = payload
        value = payload["id"]
    elif kind in (USER, MENTIONABLE) and isinstance(value, FakeUser):
        _resolve_user(value, resolved, guild)
        value = str(value.id)
    elif kind in (ROLE, MENTIONABLE) and isinstance(value, FakeRole):
        resolved.setdefault("roles", {})[str(value.id)] = value.to_payload()
        value = str(value.id)
    elif kind == CHANNEL and isinstance(value, FakeChannel):
        # Discord sends the invoker's permissions there; with no overwrites in the fake, @everyone's is close.
        permissions = str(guild.everyone_permissions)
        resolved.setdefault("channels", {})[str(value.id)] = {**value.to_payload(), "permissions": permissions}
        value = str(value.id)
    else:
        raise TypeError(f"option {spec['name']!r} (type {kind}) cannot take {value!r}")
    return {"name": spec["name"], "type": kind, "value": value}


def _primitive(spec: dict[str, Any], value: Any) -> Any:
    kind, name = spec["type"], spec["name"]
    casts = {STRING: str, INTEGER: int, NUMBER: float, BOOLEAN: bool}
    wrong = (kind == STRING and not isinstance(value, str)) or (kind != STRING and isinstance(value, str))
    if wrong or (kind in (INTEGER, NUMBER) and isinstance(value, bool)):
        raise TypeError(f"option {name!r} (type {kind}) cannot take {value!r}")
    value = casts[kind](value)
    choices = [choice["value"] for choice in spec.get("choices") or []]
    if choices and value not in choices:
        raise ValueError(f"option {name!r} must be one of {choices!r}, not {value!r}")
    # Discord's client refuses values outside the declared bounds (app_commands.Range, for one).
    size = len(value) if kind == STRING else value
    low = spec.get("min_length" if kind == STRING else "min_value")
    high = spec.get("max_length" if kind == STRING else "max_value")
    if kind != BOOLEAN and ((low is not None and size < low) or (high is not None and size > high)):
        raise ValueError(f"option {name!r} must be within [{low}, {high}], not {value!r}")
    return value


def _resolve_user(user: FakeUser, resolved: dict[str, dict[str, Any]], guild: FakeGuild) -> None:
    resolved.setdefault("users", {})[str(user.id)] = user.to_payload()
    member = guild.member(user.id)
    if member is not None:  # resolved members carry no "user": discord.py joins them by id
        payload = member.to_payload(permissions=guild.permissions_of(user.id))
        del payload["user"]
        resolved.setdefault("members", {})[str(user.id)] = payload


# -- context menus, components, modals -----------------------------------------------------------------


def context_menu_data(command: dict[str, Any], target: FakeMessage | FakeUser, guild: FakeGuild) -> dict[str, Any]:
    """``data`` of a user (type 2) or message (type 3) context menu command on ``target``."""
    resolved: dict[str, dict[str, Any]] = {}
    if isinstance(target, FakeUser):
        _resolve_user(target, resolved, guild)
    else:
        resolved["messages"] = {str(target.id): target.to_payload()}
    data: dict[str, Any] = {
        "id": command["id"],
        "name": command["name"],
        "type": command.get("type", 1),
        "target_id": str(target.id),
        "resolved": resolved,
    }
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    return data


def component_data(message: FakeMessage, custom_id: str, values: list[str] | None) -> dict[str, Any]:
    """``data`` of a click on a button (or a choice in a select) of ``message``."""
    component = message.component(custom_id)
    if component is None:
        raise LookupError(f"message {message.id} has no component {custom_id!r}; it has {message.custom_ids!r}")
    if component.get("disabled"):
        raise ValueError(f"component {custom_id!r} is disabled: nobody can click it")
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
    if component["type"] in SELECT_TYPES:
        data["values"] = list(values or [])
    elif values is not None:
        raise TypeError(f"component {custom_id!r} (type {component['type']}) takes no values")
    return data


def modal_submission(
    modal: dict[str, Any], values: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The submitted ``components`` and ``resolved`` of a modal the bot showed, in the layout it used
    (action rows or labels). ``values`` maps custom_ids to: text (text input, radio group), a list of
    strings (selects, checkbox group), a bool (checkbox), or attachment dicts (file upload); inputs
    left out keep their default."""
    inputs = [c["custom_id"] for c in _walk(modal.get("components") or []) if "custom_id" in c]
    unknown = sorted(set(values) - set(inputs))
    if unknown:
        raise ValueError(f"modal {modal.get('custom_id')!r} has no input(s) {unknown!r}; it has {inputs!r}")
    resolved: dict[str, dict[str, Any]] = {}
    components = [_submitted(component, values, resolved) for component in modal.get("components") or []]
    return components, resolved


def _submitted(component: dict[str, Any], values: Mapping[str, Any], resolved: dict[str, dict[str, Any]]) -> dict[str, Any]:
    kind = component["type"]
    out: dict[str, Any] = {"type": kind}
    if "id" in component:
        out["id"] = component["id"]
    if kind == ACTION_ROW:
        out["components"] = [_submitted(child, values, resolved) for child in component.get("components", [])]
    elif kind == LABEL:
        out["component"] = _submitted(component["component"], values, resolved)
    elif "custom_id" in component:
        out["custom_id"] = component["custom_id"]
        out.update(_input_value(component, values.get(component["custom_id"]), resolved))
    return out


def _input_value(component: dict[str, Any], value: Any, resolved: dict[str, dict[str, Any]]) -> dict[str, Any]:
    kind, custom_id = component["type"], component["custom_id"]
    if kind == TEXT_INPUT:
        text = value if value is not None else component.get("value") or ""
        if component.get("required", True) and not text:
            raise ValueError(f"text input {custom_id!r} is required")
        return {"value": text}
    if kind == FILE_UPLOAD:
        payloads = [v.to_payload() if isinstance(v, FakeAttachment) else dict(v) for v in value or []]
        for payload in payloads:
            resolved.setdefault("attachments", {})[payload["id"]] = payload
        return {"values": [payload["id"] for payload in payloads]}
    if kind == CHECKBOX:
        return {"value": bool(value)}
    if kind == RADIO_GROUP:
        return {"value": value}
    return {"values": list(value or [])}  # selects and checkbox groups


def _walk(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for component in components:
        found.append(component)
        found.extend(_walk(component.get("components", [])))
        if "component" in component:
            found.extend(_walk([component["component"]]))
    return found
