"""Reading the documentation: pages, fenced blocks, inline code and ``qmtl`` command lines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<lang>[\w+-]*)[^\n]*\n"
                   r"(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
SHELL_LANGS = frozenset({"", "bash", "sh", "shell", "console", "text"})
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")
TERMINATORS = frozenset({"|", "||", "&&", ";", ">", ">>", "2>&1", "<", "&"})


@dataclass(frozen=True)
class Block:
    """A fenced code block."""

    path: Path
    lang: str
    body: str


@dataclass(frozen=True)
class CommandLine:
    """One ``qmtl …`` invocation found in a page, as the tokens after ``qmtl``."""

    path: Path
    text: str
    args: tuple[str, ...]

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}: {self.text!r}"


def pages() -> list[Path]:
    """Every Markdown page of the site."""
    return sorted(DOCS.rglob("*.md"))


def pages_and_readme() -> list[Path]:
    return [*pages(), README]


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    return [Block(path, m.group("lang").lower(), m.group("body")) for m in FENCE.finditer(text)]


def prose(path: Path) -> str:
    """The page without its fenced blocks."""
    return FENCE.sub("", path.read_text())


def inline_code(path: Path) -> list[str]:
    return INLINE.findall(prose(path))


def _logical_lines(body: str) -> list[str]:
    """Join ``\\`` continuations and indented option lines that continue a ``qmtl`` line."""
    out: list[str] = []
    for raw in body.splitlines():
        line = raw.rstrip()
        continues = bool(out) and (out[-1].endswith("\\") or (
            line[:1].isspace() and line.strip()[:1] in ("[", "-") and " qmtl " in f" {out[-1]}"))
        if continues:
            out[-1] = out[-1].rstrip("\\").rstrip() + " " + line.strip()
        else:
            out.append(line)
    return out


def _qmtl_args(text: str) -> tuple[str, ...] | None:
    """The tokens after ``qmtl`` when ``text`` is a ``qmtl`` invocation, else ``None``.

    Accepted prefixes: a prompt ``$``, ``uv run``, ``VAR=value`` assignments. Tokens after
    a shell operator or a ``#`` comment are not part of the command.
    """
    tokens = text.strip().split()
    for i, token in enumerate(tokens):
        if token == "qmtl":
            prefix = tokens[:i]
            if all(t in ("$", "uv", "run") or ENV_ASSIGNMENT.match(t) for t in prefix):
                args: list[str] = []
                for t in tokens[i + 1:]:
                    if t in TERMINATORS or t.startswith("#"):
                        break
                    args.append(t)
                return tuple(args)
            return None
    return None


def command_lines(path: Path) -> list[CommandLine]:
    """Every ``qmtl`` invocation in the shell-like blocks and inline code of a page."""
    found: list[CommandLine] = []
    for block in blocks(path):
        if block.lang not in SHELL_LANGS:
            continue
        for line in _logical_lines(block.body):
            args = _qmtl_args(line)
            if args is not None:
                found.append(CommandLine(path, line.strip(), args))
    for code in inline_code(path):
        args = _qmtl_args(code)
        if args is not None:
            found.append(CommandLine(path, code, args))
    return found


def section(path: Path, heading: str) -> str:
    """The text of the ``## heading`` section (up to the next heading of level ≤ 2)."""
    text = path.read_text()
    match = re.search(rf"^##\s+{re.escape(heading)}\s*$(.*?)(?=^#{{1,2}}\s|\Z)", text,
                      re.MULTILINE | re.DOTALL)
    assert match, f"{path.name} has no '## {heading}' section"
    return match.group(1)


def shell_commands(body: str) -> list[str]:
    """Non-empty lines of a shell block without trailing comments."""
    commands = []
    for line in body.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            commands.append(line)
    return commands
