"""What `nada models` and `nada weights` share: the actions `list`, `pull` and `add` over a
table of the model-file registry (stylegan2/model_files.py). Torch-free: `nada models
list` must start fast and work without the `ml` extra."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from nada.errors import CLIError
from stylegan2.download import DownloadError, sha256_file
from stylegan2.model_files import (
    CACHE_ENV,
    FileStatus,
    ModelFile,
    ModelTable,
    UnknownModelFileError,
    cache_dir,
)

E = TypeVar("E", bound=ModelFile)


def lookup(table: ModelTable[E], name: str) -> E:
    """The entry for `name`, or a CLIError listing the known names."""
    try:
        return table.get(name)
    except UnknownModelFileError as exc:
        raise CLIError(str(exc)) from None


def state(status: FileStatus[Any]) -> str:
    """The last column of a listing: where the file is, or why it is not here."""
    if status.path is not None:
        via = "" if status.path == status.cache_path else f"  ({status.env_var})"
        return f"yes  {status.path}{via}"
    return "no" if status.downloadable else "no   (manual download, see below)"


def availability(status: FileStatus[Any]) -> str:
    """A compact last column: cached / downloadable / manual, and the override variable
    when one is set (the paths are in `list --json` and `pull`'s output)."""
    via = f"  ({status.env_var})" if status.override else ""
    return status.availability + via


def print_listing(
    table: ModelTable[E],
    header: Sequence[str],
    columns: Callable[[E], Sequence[str]],
    *,
    extra: Sequence[Sequence[str]] = (),
    state_of: Callable[[FileStatus[Any]], str] = state,
) -> None:
    """A table of every entry: `header` and `columns(entry)` without the last column, which
    is `state_of(status)`; `extra` rows follow the entries. Then the licenses named by a
    short id, the cache, the override rule, and how to get each file that can only be
    placed by hand."""
    statuses = table.statuses()
    rows = [tuple(header)]
    rows += [(*columns(s.entry), state_of(s)) for s in statuses]
    rows += [tuple(row) for row in extra]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
    licenses = {s.entry.license_id: s.entry.license for s in statuses if s.entry.license_id}
    for short, full in licenses.items():
        print(f"\n{short}: {full}")
    print(
        f"\ncache: {cache_dir()} (set {CACHE_ENV} to move it)\n"
        f"{table.rules.env_prefix}<NAME>=PATH or =URL overrides one file"
    )
    for status in statuses:
        if not status.here and not status.downloadable:
            print(f"\n{status.entry.name}: {status.entry.manual}")


def print_json(table: ModelTable[Any], key: str) -> None:
    """Every field of every entry, and where its file is (`nada models list --json`)."""
    root = cache_dir()
    rows = [status.to_json() for status in table.statuses()]
    folder = root / table.rules.folder
    print(json.dumps({"cache_dir": str(root), "folder": str(folder), key: rows}, indent=2))


def pull(table: ModelTable[Any], name: str, *, progress: bool | None) -> None:
    """Download `name` into the cache if needed and verify it; print where it is."""
    before = table.status(lookup(table, name).name)
    try:
        path = table.resolve(name, progress=progress)
        digest = sha256_file(path)
    except (DownloadError, OSError) as exc:  # ChecksumError, ManualDownloadError, a bad override
        raise CLIError(str(exc)) from None
    if path != before.cache_path:
        how = f"from {before.env_var}" + (", verified" if before.entry.sha256 else "")
    else:
        how = "already cached, verified" if before.cached else "downloaded, verified"
    print(f"{name}: {path} ({how}; sha256 {digest})")


def install(
    table: ModelTable[Any], name: str, source: str | os.PathLike[str], *, force: bool
) -> Path:
    """`table.install` with its refusals as CLI errors (the file, its hash, `--force`)."""
    try:
        return table.install(name, source, overwrite=force)
    except (DownloadError, OSError) as exc:  # ChecksumError, FileExistsError, FileNotFoundError
        raise CLIError(str(exc)) from None


def _accept(*args: object) -> None:
    """A check that refuses nothing."""


@dataclass(frozen=True)
class FileActions(Generic[E]):
    """`list`, `pull NAME` and `add NAME PATH` of one command group over one table; what
    differs between the groups is declared here, the actions are written once."""

    table: ModelTable[E]
    json_key: str  # the list's key in `list --json`
    header: Sequence[str]  # the listing's column titles; the last is the state's
    columns: Callable[[E], Sequence[str]]  # an entry's cells before the state
    list_help: str
    json_help: str
    pull_help: str
    add_help: str
    path_help: str
    extra_rows: Sequence[Sequence[str]] = ()  # listed after the entries
    check_name: Callable[[str], None] = _accept  # raises CLIError for a name with no file
    check_file: Callable[[E, str], None] = _accept  # raises CLIError before `add` copies
    state_of: Callable[[FileStatus[Any]], str] = state  # the listing's last column
    after_fetch: Callable[[E], None] = _accept  # after `pull` and `add`: e.g. a conversion

    def register(self, parser: argparse.ArgumentParser, *, dest: str) -> None:
        actions = parser.add_subparsers(dest=dest, metavar="ACTION")
        parser.set_defaults(func=lambda args: _usage(parser))
        names = f"a name from `{self.table.rules.command} list`"

        listing = actions.add_parser("list", help=self.list_help)
        listing.add_argument("--json", action="store_true", help=self.json_help)
        listing.set_defaults(func=self.cmd_list)

        pull = actions.add_parser("pull", help=self.pull_help)
        pull.add_argument("name", help=names)
        pull.add_argument("--no-progress", action="store_true", help="no progress bar")
        pull.set_defaults(func=self.cmd_pull)

        add = actions.add_parser("add", help=self.add_help)
        add.add_argument("name", help=names)
        add.add_argument("path", help=self.path_help)
        add.add_argument("--force", action="store_true", help="replace a different cached file")
        add.set_defaults(func=self.cmd_add)

    def cmd_list(self, args: argparse.Namespace) -> int:
        if args.json:
            print_json(self.table, self.json_key)
        else:
            print_listing(
                self.table, self.header, self.columns, extra=self.extra_rows,
                state_of=self.state_of,
            )  # fmt: skip
        return 0

    def cmd_pull(self, args: argparse.Namespace) -> int:
        self.check_name(args.name)
        pull(self.table, args.name, progress=False if args.no_progress else None)
        self.after_fetch(self.table.get(args.name))
        return 0

    def cmd_add(self, args: argparse.Namespace) -> int:
        self.check_name(args.name)
        entry = lookup(self.table, args.name)
        self.check_file(entry, args.path)
        path = install(self.table, entry.name, args.path, force=args.force)
        print(f"{entry.name}: {path} (added; sha256 {sha256_file(path)})")
        self.after_fetch(entry)
        return 0


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
