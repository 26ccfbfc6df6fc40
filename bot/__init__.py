"""The Discord side: client, configuration, store and delivery (built in the bot issue).

Imports go one way: cogs -> bot -> engine.
"""
