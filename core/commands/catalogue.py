"""Every `/lore` command: the families' definitions gathered into one registry.

A new command goes into its family's module (``COMMANDS``); a new family adds one line here.
"""

from __future__ import annotations

from core.commands import ask, channels, documents, gaps, namespaces, upkeep, usage
from core.commands.registry import Registry

REGISTRY = Registry(
    (
        *ask.COMMANDS,
        *namespaces.COMMANDS,
        *upkeep.COMMANDS,
        *documents.COMMANDS,
        *usage.COMMANDS,
        *gaps.COMMANDS,
        *channels.COMMANDS,
    ),
    groups=dict((namespaces.GROUP, documents.GROUP, usage.GROUP, upkeep.GROUP, channels.GROUP)),
)
