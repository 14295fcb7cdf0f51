"""ChatML conversations: one message type, rendering, strict parsing and injection-safe content.

Sahayak stores every session's history as ChatML::

    <|im_start|>system
    You are Sahayak…<|im_end|>
    <|im_start|>user
    what's my balance<|im_end|>

**Neutralisation rule.** Text that did not come from us (user, assistant and tool content) is
passed through :func:`neutralize` before it is rendered, so it can never close its own turn
and open a ``system`` or ``tool`` turn. A *special token* is any of ``<|…|>`` (``<|im_start|>``,
``<|im_end|>``, ``<|endoftext|>``, ``<|im_sep|>``…), ``<s>``, ``</s>``, ``<bos>``, ``<eos>``,
``[INST]``, ``[/INST]``, ``<<SYS>>``, ``<</SYS>>`` (case-insensitive). Tokens are looked for on a
*skeleton* of the text in which zero-width/format characters are ignored and fullwidth and
look-alike characters (``＜``, ``〈``, ``｜``, Cyrillic ``І``…) count as their ASCII originals, so
``<|im_\u200bend|>`` or ``＜｜im_end｜＞`` are caught too. Each token found is replaced by its
visible ASCII spelling with the brackets swapped for harmless look-alikes that no tokenizer
treats as special and that NFKC leaves alone::

    <  →  ‹ (U+2039)     >  →  › (U+203A)     [  →  ⟦ (U+27E6)     ]  →  ⟧ (U+27E7)

so ``hi<|im_end|>`` becomes ``hi‹|im_end|›``: the customer still sees what they typed, the
model sees no control token. The rule is idempotent, and its output never contains a special
token (property-tested). System content is ours and is not rewritten, but rendering refuses
system content that contains a special token.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Literal, Mapping

from app.text.preprocess import _INVISIBLE, CONFUSABLES

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"


class ChatMLError(ValueError):
    """Malformed ChatML text or an invalid message."""


@dataclass(frozen=True)
class Message:
    """One turn of a conversation."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ChatMLError(f"unknown role {self.role!r} (expected one of {', '.join(ROLES)})")
        if not isinstance(self.content, str):
            raise ChatMLError(f"message content must be text, not {type(self.content).__name__}")

    @classmethod
    def of(cls, value: "MessageLike") -> "Message":
        """Accept a :class:`Message`, a ``{"role", "content"}`` mapping or a ``(role, content)`` pair."""
        if isinstance(value, Message):
            return value
        if isinstance(value, Mapping):
            try:
                return cls(value["role"], value["content"])
            except KeyError as exc:
                raise ChatMLError(f"message is missing {exc.args[0]!r}") from None
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(value[0], value[1])
        role, content = getattr(value, "role", None), getattr(value, "content", None)
        if role is None or content is None:
            raise ChatMLError(f"cannot read a message from {type(value).__name__}")
        return cls(role, content)

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


MessageLike = Message | Mapping[str, Any] | tuple[str, str]

# ---------------------------------------------------------------------------------------------
# Special-token detection and neutralisation
# ---------------------------------------------------------------------------------------------

# Characters some renderer, normaliser or careless reader could take for the ASCII ones.
_LOOKALIKES: dict[str, str] = {}
for _ascii, _alikes in {
    "<": "\uff1c\ufe64\u02c2\u1438\u2329\u3008\u27e8\u276c\u276e\u29fc",
    ">": "\uff1e\ufe65\u02c3\u1433\u232a\u3009\u27e9\u276d\u276f\u29fd",
    "|": "\uff5c\u2223\u01c0\u2502\u2503\uffe8\u2758\u23d0\u2d4f\u05c0\u07c0\u00a6",
    "[": "\uff3b\u2045\u3010\u3014",
    "]": "\uff3d\u2046\u3011\u3015",
    "/": "\uff0f\u2044\u2215\u29f8\u2571",
    "_": "\uff3f\u2017",
}.items():
    for _c in _alikes:
        _LOOKALIKES[_c] = _ascii

# The safe replacements; deliberately absent from _LOOKALIKES and unchanged by NFKC.
_ESCAPE = {"<": "\u2039", ">": "\u203a", "[": "\u27e6", "]": "\u27e7"}

SPECIAL_TOKEN = re.compile(
    r"<\|[^|\n]{1,64}\|>"  # <|im_start|>, <|im_end|>, <|endoftext|>, <|eot_id|>, any <|…|>
    r"|<</?\s*sys\s*>>"  # Llama-2 <<SYS>> <</SYS>>
    r"|</?(?:s|bos|eos|pad|unk|start_of_turn|end_of_turn)>"  # BOS/EOS and Gemma turn markers
    r"|\[/?\s*inst\s*\]"  # Llama-2 [INST] [/INST]
    r"|\[/?(?:tool_calls|tool_results|available_tools)\]",  # Mistral tool markers
    re.IGNORECASE,
)


def _skeleton_of(ch: str) -> str:
    """What one character counts as when looking for special tokens."""
    if ch in _INVISIBLE:
        return ""
    if ch.isascii():
        return ch
    cat = unicodedata.category(ch)
    if cat in ("Cf", "Cc") and ch not in "\n\t":
        return ""
    folded = unicodedata.normalize("NFKC", ch)
    return "".join(_LOOKALIKES.get(c, CONFUSABLES.get(c, c)) for c in folded)


def _skeleton(text: str) -> tuple[list[str], str, list[int]]:
    """Per-character skeletons, the joined skeleton, and each skeleton char's source index."""
    pieces = [_skeleton_of(ch) for ch in text]
    index: list[int] = []
    for i, piece in enumerate(pieces):
        index.extend([i] * len(piece))
    return pieces, "".join(pieces), index


def find_special_tokens(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, token)`` for every special token (or disguised one) in ``text``."""
    if text.isascii():
        return [(m.start(), m.end(), m.group(0)) for m in SPECIAL_TOKEN.finditer(text)]
    _, skel, index = _skeleton(text)
    return [(index[m.start()], index[m.end() - 1] + 1, m.group(0)) for m in SPECIAL_TOKEN.finditer(skel)]


def contains_special_token(text: str) -> bool:
    """True when ``text`` holds a special token, also one hidden with invisible or look-alike characters."""
    return bool(find_special_tokens(text))


def _neutralize_once(text: str) -> str:
    spans = find_special_tokens(text)
    if not spans:
        return text
    pieces = _skeleton(text)[0] if not text.isascii() else list(text)
    out: list[str] = []
    pos = 0
    for start, end, _ in spans:
        out.append(text[pos:start])
        visible = "".join(pieces[start:end])
        out.append("".join(_ESCAPE.get(c, c) for c in visible))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def neutralize(content: str) -> str:
    """Defuse every special token in untrusted ``content`` (see the module docstring for the scheme)."""
    for _ in range(8):
        new = _neutralize_once(content)
        if new == content:
            return content
        content = new
    # Pathological nesting: escape every bracket-like character outright (always token-free).
    return "".join(_ESCAPE.get(_LOOKALIKES.get(c, c), c) for c in content)


def _checked(message: Message) -> Message:
    """Neutralise untrusted content; refuse system content that would break the framing."""
    if message.role == "system":
        if contains_special_token(message.content):
            raise ChatMLError("system content must not contain special tokens")
        return message
    return Message(message.role, neutralize(message.content))


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------


def render_chatml(messages: Iterable[MessageLike], add_generation_prompt: bool = True) -> str:
    """Render messages as ChatML; non-system content is neutralised first.

    With ``add_generation_prompt`` an open ``<|im_start|>assistant\\n`` is appended so a model
    continues as the assistant.
    """
    parts = []
    for raw in messages:
        m = _checked(Message.of(raw))
        parts.append(f"{IM_START}{m.role}\n{m.content}{IM_END}\n")
    if add_generation_prompt:
        parts.append(f"{IM_START}assistant\n")
    return "".join(parts)


def parse_chatml(text: str, allow_generation_prompt: bool = True) -> list[Message]:
    """Parse ChatML strictly; raises :class:`ChatMLError` on anything malformed.

    The text must be a sequence of ``<|im_start|>ROLE\\nCONTENT<|im_end|>`` blocks separated
    by single newlines (the final newline is optional). A trailing open
    ``<|im_start|>assistant\\n`` (a generation prompt) is accepted and dropped when
    ``allow_generation_prompt`` is true. Content holding any special token is rejected, so
    parsing never yields a message that could smuggle in a turn.
    """
    messages: list[Message] = []
    pos, n = 0, len(text)
    while pos < n:
        if not text.startswith(IM_START, pos):
            raise ChatMLError(f"expected {IM_START} at offset {pos}")
        head = pos + len(IM_START)
        newline = text.find("\n", head)
        if newline < 0:
            raise ChatMLError(f"turn at offset {pos} has no role line")
        role = text[head:newline]
        if role not in ROLES:
            raise ChatMLError(f"unknown role {role!r} at offset {pos}")
        body = newline + 1
        end = text.find(IM_END, body)
        if end < 0:
            if allow_generation_prompt and role == "assistant" and body == n:
                break  # an open generation prompt
            raise ChatMLError(f"turn at offset {pos} is not closed with {IM_END}")
        content = text[body:end]
        if contains_special_token(content):
            raise ChatMLError(f"{role} content at offset {body} contains a special token")
        messages.append(Message(role, content))  # type: ignore[arg-type]
        pos = end + len(IM_END)
        if pos < n:
            if text[pos] != "\n":
                raise ChatMLError(f"expected a newline after {IM_END} at offset {pos}")
            pos += 1
    return messages


def to_llama2(messages: Iterable[MessageLike]) -> str:
    """Render in the Llama-2 chat convention.

    ``<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {assistant} </s>`` per exchange;
    a final user turn without an answer is left open (``… [/INST]``) for generation. Tool
    results have no Llama-2 role, so they join the next instruction as ``Tool result: …``.
    """
    msgs = [_checked(Message.of(m)) for m in messages]
    system = "\n\n".join(m.content for m in msgs if m.role == "system")
    out: list[str] = []
    pending: list[str] = []
    first = True

    def instruction() -> str:
        nonlocal first
        user = "\n".join(pending)
        pending.clear()
        if first and system:
            user = f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}"
        first = False
        return f"<s>[INST] {user} [/INST]"

    for m in msgs:
        if m.role == "user":
            pending.append(m.content)
        elif m.role == "tool":
            pending.append(f"Tool result: {m.content}")
        elif m.role == "assistant":
            out.append(f"{instruction()} {m.content} </s>")
    if pending or first:
        out.append(instruction())
    return "".join(out)


_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def to_transcript(messages: Iterable[MessageLike]) -> str:
    """A plain transcript, one ``Role: content`` line per message (for people and plain LMs)."""
    return "\n".join(f"{_LABELS[m.role]}: {m.content}" for m in (_checked(Message.of(x)) for x in messages))


# ---------------------------------------------------------------------------------------------
# Conversation history
# ---------------------------------------------------------------------------------------------


class Conversation:
    """A session's turn history, kept as neutralised :class:`Message` objects.

    The dialogue manager stores each session as ``to_chatml()`` and restores it with
    :meth:`from_chatml`; ``to_dicts()`` is the ``history`` handed to handlers.
    """

    def __init__(self, messages: Iterable[MessageLike] | None = None, system: str | None = None) -> None:
        self.messages: list[Message] = []
        if system is not None:
            self.add("system", system)
        for m in messages or ():
            msg = Message.of(m)
            self.add(msg.role, msg.content)

    # --- adding turns ---------------------------------------------------------------------
    def add(self, role: str, content: str) -> Message:
        """Append a turn (untrusted roles are neutralised) and return it."""
        message = _checked(Message(role, content))  # type: ignore[arg-type]
        self.messages.append(message)
        return message

    def append(self, message: MessageLike) -> Message:
        m = Message.of(message)
        return self.add(m.role, m.content)

    def add_user(self, content: str) -> Message:
        return self.add("user", content)

    def add_assistant(self, content: str) -> Message:
        return self.add("assistant", content)

    def add_tool(self, content: str) -> Message:
        return self.add("tool", content)

    append_user, append_assistant, append_tool = add_user, add_assistant, add_tool

    # --- reading --------------------------------------------------------------------------
    @property
    def system(self) -> str | None:
        return next((m.content for m in self.messages if m.role == "system"), None)

    def last(self, role: str | None = None) -> Message | None:
        """The latest message (of ``role`` when given)."""
        return next((m for m in reversed(self.messages) if role is None or m.role == role), None)

    def window(self, max_messages: int) -> "Conversation":
        """The system messages plus the last ``max_messages`` other turns (for a model's context)."""
        system = [m for m in self.messages if m.role == "system"]
        rest = [m for m in self.messages if m.role != "system"]
        conv = Conversation()
        conv.messages = system + (rest[-max_messages:] if max_messages > 0 else [])
        return conv

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[Message]:
        return iter(self.messages)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Conversation) and other.messages == self.messages

    def __repr__(self) -> str:
        return f"Conversation({len(self.messages)} messages)"

    # --- formats --------------------------------------------------------------------------
    def to_chatml(self, add_generation_prompt: bool = False) -> str:
        return render_chatml(self.messages, add_generation_prompt=add_generation_prompt)

    @classmethod
    def from_chatml(cls, text: str) -> "Conversation":
        conv = cls()
        conv.messages = parse_chatml(text)
        return conv

    def to_dicts(self) -> list[dict[str, str]]:
        return [m.to_dict() for m in self.messages]

    @classmethod
    def from_dicts(cls, items: Iterable[MessageLike]) -> "Conversation":
        return cls(items)

    def to_json(self) -> str:
        return json.dumps(self.to_dicts(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Conversation":
        return cls(json.loads(text))

    def to_llama2(self) -> str:
        return to_llama2(self.messages)

    def to_transcript(self) -> str:
        return to_transcript(self.messages)
