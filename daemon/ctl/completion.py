"""readerhostctl's bash completion, made from its argument parser: the commands, their operations,
their options and the choices an option takes. The packaged file (systemd/bash-completion/readerhostctl)
is this module's output, and a test holds the two together:

    python -m readerhost.daemon.ctl.completion > systemd/bash-completion/readerhostctl
"""

from __future__ import annotations

import argparse
import shlex
import sys

from .arguments import build_parser

# Options whose value is a file: completed with file names.
FILE_OPTIONS = frozenset({"--socket", "--completed", "--store"})


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps no public list of a parser's subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> tuple[list[str], list[str], dict[str, tuple[str, ...]]]:
    """The parser's options; those that take a value; the choices of those that have them."""
    names: list[str] = []
    valued: list[str] = []
    choices: dict[str, tuple[str, ...]] = {}
    for action in parser._actions:
        long = [name for name in action.option_strings if name.startswith("--")]
        if not long:
            continue
        names += long
        if action.nargs != 0:
            valued += long
            if action.choices:
                choices.update((name, tuple(str(choice) for choice in action.choices)) for name in long)
    return names, valued, choices


def bash_completion() -> str:
    parser = build_parser()
    top_options, top_valued, _ = _options(parser)
    commands = _subcommands(parser)
    valued = set(top_valued)
    words: list[str] = []  # the case arms: "command" or "command operation" -> the words offered
    values: list[str] = []  # "option" -> its choices
    for name, command in commands.items():
        operations = _subcommands(command)
        options, option_values, choices = _options(command)
        valued |= set(option_values)
        words.append(f"        {shlex.quote(name)}) offer={shlex.quote(' '.join([*operations, *options]))} ;;")
        for operation, sub in operations.items():
            sub_options, sub_valued, sub_choices = _options(sub)
            valued |= set(sub_valued)
            choices |= sub_choices
            words.append(
                f"        {shlex.quote(name + ' ' + operation)}) offer={shlex.quote(' '.join(sub_options))} ;;"
            )
        for option, allowed in choices.items():
            values.append(f"        {shlex.quote(name + ' ' + option)}) offer={shlex.quote(' '.join(allowed))} ;;")
    nested = " ".join(name for name, command in commands.items() if _subcommands(command))
    files = "|".join(sorted(FILE_OPTIONS & valued))
    takes_value = "|".join(sorted(valued))
    return f"""# bash completion for readerhostctl. Made by `python -m readerhost.daemon.ctl.completion` from
# readerhostctl's own argument parser: do not edit by hand.

_readerhostctl() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD - 1]}}
    local command= operation= i offer=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${{COMP_WORDS[i]}} in
        {takes_value}) ((i++)) ;;
        -*) ;;
        *)
            if [[ -z $command ]]; then
                command=${{COMP_WORDS[i]}}
            elif [[ -z $operation && " {nested} " == *" $command "* ]]; then
                operation=${{COMP_WORDS[i]}}
            fi
            ;;
        esac
    done
    case $prev in
    {files})
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
        ;;
    esac
    case "$command $prev" in
{chr(10).join(values)}
    esac
    if [[ -z $offer ]]; then
        case $prev in
        {takes_value}) return ;;  # a value nobody can guess: an amount, an id, a time
        esac
        case "$command${{operation:+ $operation}}" in
{chr(10).join(words)}
        *) offer={shlex.quote(" ".join([*commands, *top_options]))} ;;
        esac
    fi
    mapfile -t COMPREPLY < <(compgen -W "$offer" -- "$cur")
}}
complete -F _readerhostctl readerhostctl
"""


if __name__ == "__main__":
    sys.stdout.write(bash_completion())
