"""Slash commands, context menus, buttons and modals: a thin UI layer over `bot` (the bot issue)."""
