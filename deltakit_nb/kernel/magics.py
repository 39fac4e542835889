# IPython's magic decorators and display() are untyped.
# mypy: disable-error-code="no-untyped-call"
"""IPython magics: ``%chat`` and ``%%chat``, registered by ``%load_ext deltakit_nb``.

    %chat --agent demo --title "Scratch"     display a ChatWidget (the cell's conversation)
    %chat --new                              display one with a new conversation
    %chat --agent-var my_agent               chat with an agno Agent made in the notebook
    %%chat --agent demo                      display one and send the cell body as the first
    What is 12 * (3 + 4)?                    message

``--name VAR`` also binds the widget to VAR in the notebook, for its Python API
(``VAR.messages``, ``VAR.send(...)``, ``VAR.to_markdown()``).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .widget import ChatWidget

MAGIC_NAME = "chat"


def _height(value: str) -> int | str:
    value = value.strip()
    return int(value) if value.isdigit() else value


@magics_class
class ChatMagics(Magics):
    @magic_arguments()
    @argument("--agent", "-a", help="Agent name (default: the server's default agent).")
    @argument(
        "--agent-var",
        help="Name of a notebook variable holding an agno Agent (or a callable returning one): "
        "the agent runs in this kernel.",
    )
    @argument("--thread", "-t", help="Thread id: continue that conversation.")
    @argument("--new", action="store_true", help="Start a new conversation for this cell.")
    @argument("--title", help="Title shown above the chat.")
    @argument("--placeholder", help="Placeholder text of the input box.")
    @argument("--height", help="Height in pixels, or a CSS length such as 60vh.")
    @argument("--name", "-n", help="Also bind the widget to this variable.")
    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> None:
        """Display a chat with an agent that runs in the Jupyter server.

        As a cell magic (%%chat), the cell body is sent as the first message.
        """
        try:
            argv = shlex.split(line)  # parse_argstring would keep the quotes of "My chat"
        except ValueError as exc:
            raise UsageError(f"%chat: {exc}") from exc
        args = self.chat.parser.parse_args(argv)
        if args.agent_var is not None:
            if args.agent:
                raise UsageError("%chat: give --agent or --agent-var, not both")
            assert self.shell is not None
            if args.agent_var not in self.shell.user_ns:
                raise UsageError(f"%chat: no variable {args.agent_var!r} in the notebook")
            args.agent = self.shell.user_ns[args.agent_var]
            if isinstance(args.agent, str) or args.agent is None:
                raise UsageError(
                    f"%chat: {args.agent_var} holds {type(args.agent).__name__}, not an agno "
                    "Agent or a callable returning one (--agent takes an agent's name)"
                )
        widget = make_widget(args)
        if args.name:
            if not args.name.isidentifier():
                raise UsageError(f"--name {args.name!r} is not a Python identifier")
            assert self.shell is not None
            self.shell.user_ns[args.name] = widget
        if cell is not None and cell.strip():
            widget.send(cell.strip("\n"))
        display(widget)


def make_widget(args: Any) -> ChatWidget:
    from .widget import ChatWidget

    options: dict[str, Any] = {}
    if args.agent:
        options["agent"] = args.agent
    if args.thread and args.new:
        raise UsageError("%chat: --new starts a new conversation; it cannot go with --thread")
    if args.thread:
        options["thread_id"] = args.thread
    if args.new:
        options["new"] = True
    if args.title is not None:
        options["title"] = args.title
    if args.placeholder is not None:
        options["placeholder"] = args.placeholder
    if args.height:
        options["height"] = _height(args.height)
    try:
        return ChatWidget(**options)
    except Exception as exc:  # a TraitError from a bad option
        raise UsageError(f"%chat: {exc}") from exc


def load(ip: InteractiveShell) -> None:
    ip.register_magics(ChatMagics)


def unload(ip: InteractiveShell) -> None:
    """Remove what `load` registered, and only that (a later `chat` magic of someone else's
    stays)."""
    manager = ip.magics_manager
    for kind in ("line", "cell"):
        registered = manager.magics[kind].get(MAGIC_NAME)
        if isinstance(getattr(registered, "__self__", None), ChatMagics):
            del manager.magics[kind][MAGIC_NAME]
    if isinstance(manager.registry.get(ChatMagics.__name__), ChatMagics):
        del manager.registry[ChatMagics.__name__]
