"""Imports go one way: the engine never imports discord, and its pure parts need no torch."""

import subprocess
import sys


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_engine_imports_without_discord():
    code = (
        "import sys; sys.modules['discord'] = None\n"
        "import engine, engine.worker, engine.cli, engine.modes, engine.models\n"
        "assert not any(m == 'discord' or m.startswith('discord.') for m in sys.modules if sys.modules[m]), 'discord'\n"
        "print('ok')"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_queue_and_types_need_no_torch():
    done = run_python("import sys, engine.queue, engine.errors; print('torch' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_public_api_resolves():
    done = run_python("import engine; print(all(getattr(engine, n) is not None for n in engine.__all__))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
