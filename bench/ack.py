"""Acknowledgement latency and bot overhead under load, through the local Discord.

200 `/restyle` commands from 20 users arrive at once while the engine renders. A real bot process
(`python -m bot`, tiny preset) runs against the fake Discord of tests/fakediscord, which lives in
this process and timestamps each INTERACTION_CREATE and each callback. Printed:

- ack: INTERACTION_CREATE to the defer callback (Discord allows 3 s; the goal is p99 < 100 ms)
- overhead per job: end to end (interaction to delivered result) minus the engine's own time
  (waiting in its queue + rendering), i.e. what the bot adds: download, storage, status edits,
  delivery.

    python bench/ack.py [--commands 200] [--users 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

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


async def bench(commands: int, users: int) -> None:
    people = [FakeUser(f"user{i}") for i in range(users)]
    image = (ROOT / "tests" / "assets" / "coffee.jpg").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        async with FakeDiscord(users=people, callback_deadline=None) as fake:
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
                interactions = await asyncio.gather(
                    *(
                        fake.slash(people[i % users], "restyle", {"image": attachments[i], "prompt": "a cup of tea"})
                        for i in range(commands)
                    )
                )
                await fake.wait_for(lambda: all(delivered_at(i) for i in interactions), timeout=1800, interval=0.2)
                await fake.wait_for(
                    lambda: (
                        sum(j.state is JobState.DELIVERED for j in store.recent_jobs(db, limit=commands + 1)) == commands + 1
                    ),
                    timeout=60,
                )
            finally:
                bot.kill()
                await bot.wait()
            jobs = {j.interaction_id: j for j in store.recent_jobs(db, limit=commands + 1)}

    acks = [i.ack_latency * 1000 for i in interactions]
    overheads = []
    for interaction in interactions:
        job = jobs[interaction.id]
        end_to_end = delivered_at(interaction) - interaction.created_at
        engine = job.timings.get("queued", 0.0) + job.timings.get("total", 0.0)
        overheads.append((end_to_end - engine) * 1000)
    print(
        f"{commands} /restyle commands from {users} users at once; bot process on the tiny preset, "
        f"{os.cpu_count()} CPU cores\n"
    )
    print("| measure | p50 | p99 | max |")
    print("|---|---|---|---|")
    print(
        f"| ack: INTERACTION_CREATE to defer callback | {percentile(acks, 50):.1f} ms | {percentile(acks, 99):.1f} ms "
        f"| {max(acks):.1f} ms |"
    )
    print(
        f"| bot overhead per job (end to end - engine queue - render) | {percentile(overheads, 50):.0f} ms | "
        f"{percentile(overheads, 99):.0f} ms | {max(overheads):.0f} ms |"
    )
    print(f"\nmean render {statistics.mean(j.timings.get('total', 0) for j in jobs.values()) * 1000:.0f} ms per job")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(bench(args.commands, args.users))


if __name__ == "__main__":
    main()
