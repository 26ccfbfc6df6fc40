"""Acknowledgement latency and bot overhead under load, through the local Discord.

200 `/restyle` commands from 20 users arrive at once while the engine renders (a few jobs are
queued first, and the burst starts once one of them is rendering). A real bot process
(`python -m bot`, tiny preset) runs against the fake Discord of tests/fakediscord, which lives in
this process and timestamps each INTERACTION_CREATE and each callback. Each round starts a fresh
bot process. Printed:

- ack: INTERACTION_CREATE to the defer callback (Discord allows 3 s; the goal is p99 < 100 ms)
- overhead per job: end to end (interaction to delivered result) minus the engine's own time
  (waiting in its queue + rendering), i.e. what the bot adds: download, storage, status edits,
  delivery.
- a full garbage collection in a process holding what the bot holds, before and after the
  gc.freeze() the bot does at start-up: the event loop stands still for as long.

    python bench/ack.py [--commands 200] [--users 20] [--busy 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # this file's folder holds an engine.py too

from bot import store
from bot.jobs import JobState
from tests.bot.process import start_bot_process
from tests.fakediscord import FakeDiscord, FakeUser


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def delivered_at(interaction) -> float | None:
    original = interaction.original
    if original is None or not original.attachments:
        return None
    times = [edit.time for edit in original.edits if "attachments" in edit.changes]
    return min(times) if times else original.created_at


async def send_burst(fake: FakeDiscord, people: list[FakeUser], attachments: list[dict]) -> list:
    """One /restyle per attachment, all at once, the users taking turns. The fake Discord is the
    instrument: its full garbage collections (tens of ms, growing with every recorded request) are
    kept out of the callbacks it timestamps until the caller's gc.unfreeze()."""
    gc.collect()
    gc.freeze()
    return await asyncio.gather(
        *(
            fake.slash(people[i % len(people)], "restyle", {"image": attachment, "prompt": "a cup of tea"})
            for i, attachment in enumerate(attachments)
        )
    )


@dataclass
class Round:
    acks: list[float]  # ms
    overheads: list[float]  # ms
    renders: list[float]  # ms
    commands: list[dict] = field(default_factory=list)  # what the bot synced, for the floor round


async def one_round(commands: int, users: int, busy: int) -> Round:
    people = [FakeUser(f"user{i}") for i in range(users)]
    painter = FakeUser("painter")  # whose jobs keep the engine busy as the burst arrives
    image = (ROOT / "tests" / "assets" / "coffee.jpg").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        async with FakeDiscord(users=[*people, painter], callback_deadline=None) as fake:
            db = store.open_db(data_dir / "restyle.db")
            store.update_settings(db, fake.guild.id, per_user_limit=commands)  # measure load, not refusals
            bot = await start_bot_process(fake, data_dir)
            try:
                # One warm-up job so model building is not in the figures.
                warm = await fake.slash(
                    people[0], "restyle", {"image": fake.add_attachment(image, "w.jpg"), "prompt": "tea"}
                )
                await fake.wait_for(lambda: delivered_at(warm), timeout=120)

                attachments = [fake.add_attachment(image, f"c{i}.jpg") for i in range(commands)]
                for i in range(busy):
                    await fake.slash(painter, "restyle", {"image": fake.add_attachment(image, f"b{i}.jpg"), "prompt": "ink"})
                await fake.wait_for(lambda: _rendering(db, busy), timeout=60, interval=0.002)
                interactions = await send_burst(fake, people, attachments)
                await fake.wait_for(lambda: all(delivered_at(i) for i in interactions), timeout=1800, interval=0.2)
                total = commands + busy + 1
                await fake.wait_for(
                    lambda: sum(j.state is JobState.DELIVERED for j in store.recent_jobs(db, limit=total)) == total,
                    timeout=60,
                )
            finally:
                gc.unfreeze()
                bot.kill()
                await bot.wait()
            jobs = {j.interaction_id: j for j in store.recent_jobs(db, limit=total)}
            synced = fake.commands(fake.guild)

    overheads = []
    for interaction in interactions:
        job = jobs[interaction.id]
        end_to_end = delivered_at(interaction) - interaction.created_at
        engine = job.timings.get("queued", 0.0) + job.timings.get("total", 0.0)
        overheads.append((end_to_end - engine) * 1000)
    return Round(
        acks=[i.ack_latency * 1000 for i in interactions],
        overheads=overheads,
        renders=[jobs[i.id].timings.get("total", 0) * 1000 for i in interactions],
        commands=synced,
    )


async def floor_round(commands: int, users: int, synced: list[dict]) -> list[float]:
    """The same burst answered by a client that does nothing but acknowledge (``--acknowledge-only``,
    a process of its own): what the fake Discord and this machine cost before any bot code runs."""
    people = [FakeUser(f"user{i}") for i in range(users)]
    image = (ROOT / "tests" / "assets" / "coffee.jpg").read_bytes()
    async with FakeDiscord(users=people, callback_deadline=None) as fake:
        url = f"{fake.api_base}/applications/{fake.application_id}/guilds/{fake.guild.id}/commands"
        auth = {"Authorization": f"Bot {fake.token}"}
        async with aiohttp.ClientSession() as http, http.put(url, json=synced, headers=auth) as response:
            response.raise_for_status()
        env = {**os.environ, "DISCORD_TOKEN": fake.token, "DISCORD_API_BASE": fake.api_base}
        env["DISCORD_GATEWAY_URL"] = fake.gateway_url
        client = await asyncio.create_subprocess_exec(sys.executable, __file__, "--acknowledge-only", env=env)
        try:
            await fake.wait_for(lambda: fake.gateway_stats.identifies, timeout=30)
            attachments = [fake.add_attachment(image, f"c{i}.jpg") for i in range(commands)]
            interactions = await send_burst(fake, people, attachments)
            await fake.wait_for(lambda: all(i.callback for i in interactions), timeout=60, interval=0.01)
        finally:
            gc.unfreeze()
            client.kill()
            await client.wait()
    return [i.ack_latency * 1000 for i in interactions]


async def acknowledge_only() -> None:
    """Identify on the gateway and defer every interaction at once, with aiohttp as discord.py uses it
    (a session with an unlimited connector): nothing else."""
    token, api = os.environ["DISCORD_TOKEN"], os.environ["DISCORD_API_BASE"]
    pending: set[asyncio.Task] = set()

    async def defer(http: aiohttp.ClientSession, interaction: dict) -> None:
        url = f"{api}/interactions/{interaction['id']}/{interaction['token']}/callback?with_response=1"
        async with http.post(url, json={"type": 5}) as response:
            await response.read()

    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
        http.ws_connect(os.environ["DISCORD_GATEWAY_URL"]) as ws,
    ):
        await ws.receive_json()  # HELLO
        await ws.send_json({"op": 2, "d": {"token": token, "intents": 1, "properties": {}}})
        async for message in ws:
            frame = json.loads(message.data)
            if frame.get("t") == "INTERACTION_CREATE":
                task = asyncio.create_task(defer(http, frame["d"]))
                pending.add(task)
                task.add_done_callback(pending.discard)


def _rendering(db, busy: int) -> bool:
    """All the busy jobs are stored (their intake is over) and one of them renders."""
    jobs = [j for j in store.recent_jobs(db, limit=busy) if j.prompt == "ink"]
    return len(jobs) == busy and any(j.state is JobState.RUNNING for j in jobs)


def gc_pauses() -> tuple[float, float, int]:
    """A full collection in this process once it holds what the bot holds (its modules and the tiny
    preset's models, built by a render), before and after gc.freeze(): (ms, ms, objects)."""
    import bot.client  # noqa: F401  discord.py, aiohttp and the cogs' imports
    from engine.render import Renderer
    from engine.settings import EngineSettings
    from engine.types import GenerationRequest, Mode

    renderer = Renderer(EngineSettings(preset="tiny", device="cpu"))
    photo = Image.open(ROOT / "tests" / "assets" / "coffee.jpg").convert("RGB")
    renderer.render(GenerationRequest(image=photo, prompt="tea", mode=Mode.REDUX, seed=1))

    def full() -> float:
        times = []
        for _ in range(3):
            began = time.perf_counter()
            gc.collect()
            times.append((time.perf_counter() - began) * 1000)
        return statistics.median(times)

    objects = len(gc.get_objects())
    before = full()
    gc.freeze()
    after = full()
    gc.unfreeze()
    return before, after, objects


async def bench(commands: int, users: int, busy: int, rounds: int) -> None:
    results = [await one_round(commands, users, busy) for _ in range(rounds)]
    floor = await floor_round(commands, users, results[0].commands)
    print(
        f"{commands} /restyle commands from {users} users at once, {busy} jobs queued before and one "
        f"rendering; a fresh bot process (tiny preset) per round; {os.cpu_count()} CPU cores\n"
    )
    print("| round | ack p50 | ack p99 | ack max | bot overhead per job p50 | p99 | mean render |")
    print("|---|---|---|---|---|---|---|")
    for index, result in enumerate(results, 1):
        print(_row(str(index), [result]))
    if rounds > 1:
        print(_row("all", results))
    print(
        f"| floor: a client that only acknowledges | {percentile(floor, 50):.1f} ms | {percentile(floor, 99):.1f} ms "
        f"| {max(floor):.1f} ms | | | |"
    )
    before, after, objects = gc_pauses()
    print(f"\nA full garbage collection with the bot's modules and models loaded ({objects:,} objects):\n")
    print("| | pause |")
    print("|---|---|")
    print(f"| without gc.freeze() | {before:.1f} ms |")
    print(f"| after gc.freeze() at start-up, as the bot does | {after:.2f} ms |")


def _row(name: str, results: list[Round]) -> str:
    acks = [a for r in results for a in r.acks]
    overheads = [o for r in results for o in r.overheads]
    render = statistics.mean(x for r in results for x in r.renders)
    return (
        f"| {name} | {percentile(acks, 50):.1f} ms | {percentile(acks, 99):.1f} ms | {max(acks):.1f} ms "
        f"| {percentile(overheads, 50):.0f} ms | {percentile(overheads, 99):.0f} ms | {render:.0f} ms |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--busy", type=int, default=4, help="jobs queued before the burst, one rendering")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--acknowledge-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.acknowledge_only:  # the floor round's client
        asyncio.run(acknowledge_only())
        return
    asyncio.run(bench(args.commands, args.users, args.busy, args.rounds))


if __name__ == "__main__":
    main()
