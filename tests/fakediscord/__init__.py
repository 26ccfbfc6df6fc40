"""A fake Discord (REST + gateway on 127.0.0.1) that a real discord.py bot connects to in tests.

Run a bot against it, in one event loop, bounded by ``asyncio.wait_for``::

    async with FakeDiscord() as fake, run_bot(fake, bot):      # bot = commands.Bot(..., guild_ready_timeout=0.05)
        image = fake.add_attachment(png_bytes, "cat.png")      # its setup_hook synced to fake.guild
        interaction = await fake.slash(fake.alice, "restyle", {"image": image, "prompt": "ink", "strength": 0.7})
        assert (await interaction.wait_callback()).type == CallbackType.DEFERRED_CHANNEL_MESSAGE
        result = await fake.wait_for(lambda: interaction.followups and interaction.followups[0])
        assert result.attachments[0].data == expected_png

``FakeDiscord(*, guilds=(), users=(), bot_permissions=BOT_PERMISSIONS, callback_deadline=3.0,
heartbeat_interval=41.25, clock=time.monotonic)``; ``async with`` starts it on a free port, stops it,
and on a clean exit re-raises the first crash of its own handlers (``server_errors``).

World: ``guild`` ("Restyle Test") with ``channel`` (#general); ``alice`` holds "Moderator" (Manage
Server + Manage Messages), ``bob`` only @everyone's ``EVERYONE_PERMISSIONS``; the bot (``bot_user``,
whose id is also ``application_id``) has a role with ``bot_permissions`` in every guild of ``guilds``.
``guilds=`` adds ``FakeGuild``s (``add_channel``, ``add_role``, ``add_member``), ``users=`` plain
members of ``guild``. ``token`` is what ``bot.start`` needs; ``api_base``, ``gateway_url``,
``base_url``, ``port`` are the addresses; ``app_owner`` owns the application.

Acting as users (each dispatches over the gateway and returns what it created):
  ``add_attachment(data, filename, content_type=None, *, description=None) -> dict``: a file the fake
      serves; the payload (id, url, size, content_type, width/height for images) goes into a slash
      option, a modal file upload or ``user_message``.
  ``await user_message(user, channel=None, *, content="", attachments=(), reference=None) -> FakeMessage``
  ``await slash(user, name, options=None, *, channel=None, locale="en-US") -> FakeInteraction``:
      ``name`` may be "group sub"; options are checked and typed against the synced schema (str, int,
      float, bool, FakeUser, FakeRole, FakeChannel, attachment dict); unsynced commands raise.
  ``await context_menu(user, name, target, *, channel=None) -> FakeInteraction``: target is a
      FakeMessage (message menu) or a FakeUser (user menu).
  ``await click(user, message, custom_id, *, values=None) -> FakeInteraction``
  ``await submit_modal(user, custom_id, values, *, message=None) -> FakeInteraction``: the modal the
      bot showed ``user``, answered in its own layout (action rows or labels).

Reading: ``messages(channel=None, *, include_deleted=False)`` (the bot's, ephemeral included),
``message(id)``, ``interactions``, ``commands(guild=None)``, ``requests`` (``RecordedRequest``s),
``requests_to(method, glob)``, ``unknown_requests``, ``gateway_stats`` (connections, identifies,
resumes, replayed, heartbeats, received), ``await wait_for(predicate, timeout=5.0)`` (returns the
truthy value), ``await wait_for_message(predicate, timeout=5.0, *, channel=None)``.

Breaking: ``fail_next(method, path_glob, status, count=1, retry_after=0.05, *, applied=False)`` (a 429
carries what discord.py retries on; ``applied=True`` lets the request take effect first: a lost
answer); ``await drop_gateway(*, resume=True)``; ``now()`` and ``advance(seconds)``: interaction
tokens die after 15 minutes (401, code 50027), callbacks later than ``callback_deadline`` get 404
(code 10062).

``FakeInteraction``: ``id``, ``token``, ``type``, ``user``, ``channel``, ``payload``, ``created_at``,
``message`` (what a component is on), ``callback`` (``Callback``: type, data, files, time),
``await wait_callback(timeout=5.0)``, ``callback_time``, ``ack_latency``, ``original`` (the
``@original`` message), ``followups``.
``FakeMessage``: ``id``, ``channel_id``, ``author``, ``content``, ``embeds``, ``components``,
``attachments`` (``FakeAttachment`` with ``data``), ``flags``, ``ephemeral``, ``loading``,
``message_reference``, ``nonce``, ``edits`` (``MessageEdit``: time, changes, before), ``deleted``,
``reactions``, ``custom_ids``, ``component(custom_id)``.

Harness: ``point_discord_py_at(fake)`` swaps discord.py's REST base and default gateway;
``run_bot(fake, bot, *, timeout=10.0)`` starts the bot, waits until ready, closes it and re-raises
its own failure; ``fast_discord_retries(scale=0.01)`` shortens discord.py's 429/5xx back-off.

Discord behaviour kept because a bot could trip on it: interaction messages are webhook messages;
defer shows a loading message until the first edit; a second callback gets 40060; followups before
the callback get 10015; ``enforce_nonce`` answers a repeated nonce with the first message; without
the message content intent other people's messages arrive blank; posting needs Send Messages (and
Attach Files for files), counting @everyone's permissions too.
"""

from .harness import fast_discord_retries, point_discord_py_at, run_bot
from .payloads import (
    BOT_PERMISSIONS,
    EPHEMERAL,
    EVERYONE_PERMISSIONS,
    LOADING,
    MODERATOR_PERMISSIONS,
    Callback,
    CallbackType,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    MessageEdit,
    RecordedRequest,
    UploadedFile,
)
from .server import FakeDiscord

__all__ = [
    "BOT_PERMISSIONS",
    "EPHEMERAL",
    "EVERYONE_PERMISSIONS",
    "LOADING",
    "MODERATOR_PERMISSIONS",
    "Callback",
    "CallbackType",
    "FakeAttachment",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "MessageEdit",
    "RecordedRequest",
    "UploadedFile",
    "fast_discord_retries",
    "point_discord_py_at",
    "run_bot",
]
