"""Arguments shared by the ``srhm`` commands (click callbacks), below every command module."""

from __future__ import annotations

import click

from .catalog import resolve


def config_arg(ctx, param, value):
    """click callback: turn a CONFIG string into an SRHMConfig, as a usage error if bad."""
    try:
        if isinstance(value, tuple):
            return tuple(resolve(v) for v in value)
        return None if value is None else resolve(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None
