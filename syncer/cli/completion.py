"""``syncer completion bash|zsh|fish``: the shell completion script, account names included.

Why a command: click completes through an environment variable
(``_SYNCER_COMPLETE=bash_source syncer``) that nobody remembers; this prints the same
script, to be sourced from the shell's start-up file. Account names come from the
configuration at completion time (:func:`syncer.cli.context.complete_accounts`).
"""

from __future__ import annotations

import click


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (commands, options and account names).

    \b
    Example:
      eval "$(syncer completion bash)"            # in ~/.bashrc
      syncer completion fish > ~/.config/fish/completions/syncer.fish
    """
    from click.shell_completion import get_completion_class

    root = ctx.find_root()
    cls = get_completion_class(shell)
    assert cls is not None  # the Choice names only shells click knows
    script = cls(root.command, {}, "syncer", "_SYNCER_COMPLETE").source()
    click.echo(script)
