"""The one registry of downloadable model files: base generators and auxiliary weights alike.

Tables use it: the base generators (`stylegan2.registry`, kind 'generator'), the photo
pipeline's auxiliary files (`invert.weights`, kind 'auxiliary': e4e, the face detector,
VGG for LPIPS), the ready-made domains (`stylegan2.domains`) and the latent edit directions
(`stylegan2.directions`). Every rule below is written once, here, for all of them:

- **Cache path.** `<cache>/<folder>/<filename>`, where `<cache>` is $NADA_CACHE_DIR (else
  the user's cache directory / 'stylegan-nada') and `<folder>` is `generators` or
  `weights` (KINDS).
- **Checksums.** An entry's `sha256` is filled in only where the publisher lists one; a
  file must match it. Without one the first download (or the first file placed by hand)
  is trusted and its hash recorded beside it in `<file>.sha256`; every later use verifies
  the file against that record ("trust on first use").
- **Environment override.** `NADA_GENERATOR_<NAME>` / `NADA_WEIGHTS_<NAME>` (NAME in upper
  case, '-' and '.' -> '_') holds either a path to a local copy, used in place of the cache
  (checked against the published sha256 where there is one, never copied or written
  beside), or an http(s) URL of a mirror, downloaded into the cache instead of the entry's
  URL (the same checksum rules apply).
- **Install** (`nada models add`, `nada weights add`). A file that does not match the
  published sha256 is refused; the same bytes as the cached file are a no-op; a different
  file under a cached name is refused unless `overwrite` (`--force`).
- **Registration** (`add_generator`, `add_weights`). A name already in the table is
  refused unless `overwrite`, identical or not, and two names never share a cache file.

Standard library only (plus platformdirs for the default cache directory and tqdm for the
download's progress bar): the API process lists these tables and never imports torch.
The transfer (resumable, locked, hashed) and the record of a trusted hash are
`stylegan2.download`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from nada import rundir
from stylegan2.download import (
    ChecksumError,
    DownloadError,
    download,
    downloads_off,
    file_lock,
    record_sha256,
    recorded_sha256,
    sha256_file,
    verify_file,
)

log = logging.getLogger(__name__)

CACHE_ENV = "NADA_CACHE_DIR"

Kind = Literal["generator", "auxiliary", "domain", "direction"]
Availability = Literal["cached", "downloadable", "manual"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class UnknownModelFileError(ValueError):
    """A name that is not in its table; the message lists the known names."""


class UnknownGeneratorError(UnknownModelFileError):
    """A generator name that is not in the registry."""


class UnknownWeightsError(UnknownModelFileError):
    """An auxiliary model file name that is not registered."""


class UnknownDomainError(UnknownModelFileError):
    """A ready-made domain name that is not registered (stylegan2/domains.py)."""


class UnknownDirectionError(UnknownModelFileError):
    """A latent edit direction name that is not registered (stylegan2/directions.py)."""


class ManualDownloadError(DownloadError):
    """A registered file that has no download URL and is not on this machine yet."""


class MissingOverrideError(DownloadError, FileNotFoundError):
    """The environment override names a local file that does not exist."""


@dataclass(frozen=True)
class KindRules:
    """What differs between the two kinds: where the files live and the names users type.
    The rules themselves (the functions of ModelTable) are the same."""

    folder: str  # the cache's subfolder
    env_prefix: str  # + NAME: the override variable
    noun: str  # in messages: "unknown generator 'x'"
    command: str  # the CLI command group that pulls and adds these files
    unknown: type[UnknownModelFileError]  # raised for a name not in the table
    unknown_hint: str = ""  # what else is accepted where a name is asked for
    local_hint: str = ""  # another way to use a local copy, for messages


KINDS: dict[Kind, KindRules] = {
    "generator": KindRules(
        folder="generators",
        env_prefix="NADA_GENERATOR_",
        noun="generator",
        command="nada models",
        unknown=UnknownGeneratorError,
        unknown_hint=" (or random-<size>, or a path to a .pt file)",
        local_hint="pass a local path with --generator PATH",
    ),
    "auxiliary": KindRules(
        folder="weights",
        env_prefix="NADA_WEIGHTS_",
        noun="model file",
        command="nada weights",
        unknown=UnknownWeightsError,
    ),
    "domain": KindRules(
        folder="domains",
        env_prefix="NADA_DOMAIN_",
        noun="ready-made domain",
        command="nada domains",
        unknown=UnknownDomainError,
    ),
    "direction": KindRules(
        folder="directions",
        env_prefix="NADA_DIRECTION_",
        noun="edit direction",
        command="nada directions",
        unknown=UnknownDirectionError,
    ),
}


@dataclass(frozen=True, kw_only=True)
class ModelFile:
    """One downloadable file. Each kind's entry type (`GeneratorInfo`, `WeightFile`)
    extends it with what only that kind has and fixes `kind`."""

    name: str  # table key, lower case: 'ffhq-1024', 'e4e-ffhq'
    kind: Kind  # which table, hence the cache folder and the override variable
    filename: str  # file name inside the cache folder
    description: str  # one line for the listings and the docs
    url: str | None = None  # direct download; None: the user places the file (see `manual`)
    sha256: str | None = None  # published hex digest; None: trust on first use
    size_mb: float | None = None  # approximate download size; None: not known
    source: str = ""  # who made it and where the file is mirrored
    license: str = ""  # the license of the weights, in a few words
    license_id: str = ""  # a short id for listings: 'nvidia-nc', 'mit'; '': see `license`
    manual: str | None = None  # how to obtain the file by hand (required when url is None)
    family: str = ""  # the architecture it belongs to, e.g. 'stylegan2'
    domain: str = ""  # what it draws or works on, in a few words: 'human faces'
    notes: str = ""  # anything else a user should know before using it

    def __post_init__(self) -> None:
        noun = KINDS[self.kind].noun
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"{noun} name must be lower-case letters, digits, '.', '_' or '-' "
                f"(got {self.name!r})"
            )
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(
                f"{self.name}: sha256 must be 64 lower-case hex digits (got {self.sha256!r})"
            )
        if not self.filename or Path(self.filename).name != self.filename:
            raise ValueError(f"{self.name}: filename must be a bare file name ({self.filename!r})")
        if self.url is not None and not self.url.startswith(("https://", "http://")):
            raise ValueError(f"{self.name}: url must be http(s) (got {self.url!r})")
        if self.url is None and not self.manual:
            raise ValueError(f"{self.name}: an entry without url needs a `manual` note")


# -- the cache ---------------------------------------------------------------------------


def cache_dir() -> Path:
    """$NADA_CACHE_DIR, else the user's cache directory / 'stylegan-nada' (not created)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir()) / "stylegan-nada"


# -- a table -------------------------------------------------------------------------------

E = TypeVar("E", bound=ModelFile)


@dataclass(frozen=True)
class FileStatus(Generic[E]):
    """Where one entry's file is on this machine, as of `ModelTable.status`: for `nada
    models list` / `nada weights list`."""

    entry: E
    env_var: str  # the override variable
    override: str | None  # its value, when set
    cache_path: Path  # where the cache keeps the file, whether or not it is there
    cached: bool  # the file is in the cache
    path: Path | None  # the file that would be used now (override or cache); None: absent

    @property
    def here(self) -> bool:
        """A file is on this machine for this entry (the override's, else the cache's)."""
        return self.path is not None

    @property
    def downloadable(self) -> bool:
        """A pull would fetch it: the entry or the override names a URL, and downloads are
        not switched off (NADA_OFFLINE, HF_HUB_OFFLINE: `stylegan2.download.downloads_off`)."""
        has_url = self.entry.url is not None or _is_url(self.override)
        return has_url and not downloads_off()

    @property
    def availability(self) -> Availability:
        """'cached' (a file is here: the cache's or the override's), 'downloadable' (a
        pull fetches it) or 'manual' (it must be placed by hand)."""
        if self.here:
            return "cached"
        return "downloadable" if self.downloadable else "manual"

    def to_json(self) -> dict[str, Any]:
        """Every field of the entry, plus the state on this machine."""
        return dataclasses.asdict(self.entry) | {
            "cached": self.cached,
            "here": self.here,
            "downloadable": self.downloadable,
            "availability": self.availability,
            "path": str(self.path) if self.path else None,
            "env": self.env_var,
            "override": self.override,
        }


class ModelTable(Generic[E]):
    """The entries of one kind and every operation on their files."""

    def __init__(self, kind: Kind, entries: Iterable[E]):
        self.kind: Kind = kind
        self.rules = KINDS[kind]
        self._entries: dict[str, E] = {}
        for entry in entries:
            self.add(entry)

    # -- the entries -------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[E]:
        """Every entry, in registration order (copies)."""
        return [dataclasses.replace(entry) for entry in self._entries.values()]

    def get(self, name: str) -> E:
        """The entry for `name` (a copy).

        Raises:
            UnknownModelFileError (the kind's subclass): with the known names, e.g.
                "unknown generator 'ffqh-1024'; known: ffhq-1024, afhq-dog-512, ..."
        """
        entry = self._entries.get(name)
        if entry is None:
            raise self.rules.unknown(
                f"unknown {self.rules.noun} {name!r}; known: {', '.join(self._entries)}"
                + self.rules.unknown_hint
            )
        return dataclasses.replace(entry)

    def add(self, entry: E, *, overwrite: bool = False) -> None:
        """Register `entry` for this process (e.g. a team's own base model on a server).

        Raises:
            TypeError: not an entry of this table's kind.
            ValueError: the name is registered already (`overwrite` replaces it), or its
                cache file name belongs to another entry.
        """
        if not isinstance(entry, ModelFile) or entry.kind != self.kind:
            got = f"{type(entry).__name__} of kind {getattr(entry, 'kind', None)!r}"
            raise TypeError(f"a {self.rules.noun} table takes {self.kind} entries (got a {got})")
        if entry.name in self._entries and not overwrite:
            raise ValueError(
                f"{self.rules.noun} {entry.name!r} is already registered (pass overwrite=True)"
            )
        for other in self._entries.values():
            if other.filename == entry.filename and other.name != entry.name:
                raise ValueError(
                    f"{entry.name}: cache file name {entry.filename!r} is already used by "
                    f"{other.name}"
                )
        self._entries[entry.name] = dataclasses.replace(entry)

    # -- where the files are -----------------------------------------------------------

    def env_var(self, name: str) -> str:
        """'e4e-ffhq' -> 'NADA_WEIGHTS_E4E_FFHQ': the variable that overrides its file."""
        return self.rules.env_prefix + name.upper().replace("-", "_").replace(".", "_")

    def override(self, name: str) -> str | None:
        """The override variable's value for `name`, when set (a path or an http(s) URL)."""
        return os.environ.get(self.env_var(name)) or None

    def cache_path(self, name: str) -> Path:
        """Where `name`'s file lives in the cache, whether or not it is there yet."""
        return cache_dir() / self.rules.folder / self.get(name).filename

    def cached_path(self, name: str) -> Path | None:
        """The cached file for `name`, or None. Cheap: does not verify the checksum."""
        path = self.cache_path(name)
        return path if path.is_file() else None

    def local_path(self, name: str) -> Path | None:
        """The file `resolve` would use now without downloading: the override's local
        file (whether or not it exists), else the cached file; None if neither."""
        override = self.override(name)
        if override and not _is_url(override):
            return Path(override).expanduser()
        return self.cached_path(name)

    def status(self, name: str) -> FileStatus[E]:
        local = self.local_path(name)
        return FileStatus(
            entry=self.get(name),
            env_var=self.env_var(name),
            override=self.override(name),
            cache_path=self.cache_path(name),
            cached=self.cache_path(name).is_file(),
            path=local if local is not None and local.is_file() else None,
        )

    def statuses(self) -> list[FileStatus[E]]:
        """Every entry and where its file is, in registration order (the listings)."""
        return [self.status(name) for name in self._entries]

    # -- using and installing ----------------------------------------------------------

    def verify_cached(self, name: str) -> str:
        """Check `name`'s cached file against its published or recorded sha256; return it.

        A file with neither (placed by hand) is trusted now and its hash recorded.

        Raises:
            ManualDownloadError / DownloadError: the file is not in the cache.
            ChecksumError: the file does not match.
        """
        entry = self.get(name)
        path = self.cache_path(name)
        if not path.is_file():
            if entry.url is None:
                raise self._missing(entry, path, "is not on this machine and has no download URL")
            raise DownloadError(
                f"{self.rules.noun} {name!r} is not in the cache ({path}); run "
                f"`{self.rules.command} pull {name}`",
                model=name,
            )
        return verify_file(
            path,
            entry.sha256,
            name=name,
            fix=(
                f"Delete it (and its .sha256) and run `{self.rules.command} pull {name}`, or "
                f"`{self.rules.command} add {name} PATH --force`, or set {self.env_var(name)}."
            ),
        )

    def resolve(
        self, name: str, *, progress: bool | None = None, download_missing: bool = True
    ) -> Path:
        """The verified local file for `name`: the override's local file, else the cached
        file, downloaded first (from the override's URL, else the entry's) if needed and
        `download_missing`.

        Raises:
            UnknownModelFileError: `name` is not registered.
            MissingOverrideError: the override names a file that does not exist.
            ManualDownloadError: no URL and not here; the message says how to get the file.
            DownloadError: offline, the server failed, or downloads are off; the message
                says where to place the file by hand.
            ChecksumError: the file does not match its published or recorded sha256.
        """
        entry = self.get(name)
        override = self.override(name)
        if override and not _is_url(override):
            return self._checked_override(entry, Path(override).expanduser())
        path = self.cache_path(name)
        if not path.is_file():
            url = override or entry.url
            if url is None:
                raise self._missing(entry, path, "is not on this machine and has no download URL")
            if not download_missing:
                raise self._missing(entry, path, "is not on this machine (downloads are off)")
            digest = download(
                url,
                path,
                sha256=entry.sha256,
                name=name,
                progress=progress,
                by_hand=self._by_hand(entry, path),
            )
            if entry.sha256 is None and recorded_sha256(path) is None:
                log.warning("%s: no published checksum; recording sha256 %s", name, digest)
                record_sha256(path, digest)
        self.verify_cached(name)
        return path

    def install(
        self, name: str, source: str | os.PathLike[str], *, overwrite: bool = False
    ) -> Path:
        """Copy a local file into the cache as `name` and record its hash (what `nada
        models add` and `nada weights add` do). The same bytes as the cached file: nothing
        to do; other bytes under a cached name: refused unless `overwrite`. Checking that
        the file is what its kind should be (a loadable generator) is the caller's job, so
        that this module stays free of torch.

        Raises:
            FileNotFoundError: `source` is not a file.
            ChecksumError: it does not match the published sha256.
            FileExistsError: a different file is cached under `name` and not `overwrite`.
        """
        entry = self.get(name)
        source = Path(source)
        if not source.is_file():
            raise FileNotFoundError(f"no such file: {source}")
        digest = sha256_file(source)
        if entry.sha256 and digest != entry.sha256:
            raise ChecksumError(
                f"{source} has sha256 {digest}, but the published sha256 of {name} is "
                f"{entry.sha256}; it is not that {self.rules.noun}",
                expected=entry.sha256,
                got=digest,
            )
        path = self.cache_path(name)
        with file_lock(path.with_name(path.name + ".lock")):
            if path.is_file() and sha256_file(path) == digest:
                record_sha256(path, digest)  # the same file: keep it, mend its record
            elif path.is_file() and not overwrite:
                raise FileExistsError(
                    f"{name} is already cached at {path} with different contents; pass "
                    "--force to replace it"
                )
            else:
                rundir.publish(source, path, copy=True)
                record_sha256(path, digest)
        override = self.override(name)
        if override and not _is_url(override):
            log.warning("%s is set: %s is used instead of the cache", self.env_var(name), override)
        return path

    # -- messages ----------------------------------------------------------------------

    def _checked_override(self, entry: E, path: Path) -> Path:
        variable = self.env_var(entry.name)
        if not path.is_file():
            raise MissingOverrideError(
                f"{variable} points at {path}, which is not a file (it takes a path to a "
                "local copy or an http(s) URL of a mirror)"
            )
        if entry.sha256:
            digest = sha256_file(path)
            if digest != entry.sha256:
                raise ChecksumError(
                    f"{path} ({variable}) is not {entry.name}: its sha256 {digest} differs "
                    f"from the published {entry.sha256}",
                    expected=entry.sha256,
                    got=digest,
                )
        return path

    def _ways(self, entry: E, path: Path, *, to: str) -> str:
        """Where a copy of `entry` can go instead of our download."""
        ways = [f"{to} {path}", self.rules.local_hint, f"set {self.env_var(entry.name)}=PATH"]
        return ", or ".join(way for way in ways if way)

    def _by_hand(self, entry: E, path: Path) -> str:
        """How to get `entry` onto this machine, for a failed download's message."""
        manual = f". {entry.manual}" if entry.manual else ""
        return f"place the file by hand {self._ways(entry, path, to='at')}{manual}"

    def _missing(self, entry: E, path: Path, why: str) -> DownloadError:
        error = ManualDownloadError if entry.url is None else DownloadError
        manual = f"{entry.manual} " if entry.manual else ""
        return error(
            f"{self.rules.noun} {entry.name!r} ({entry.description}) {why}. {manual}"
            f"Or copy the file {self._ways(entry, path, to='to')}.",
            model=entry.name,
        )


def _is_url(value: str | None) -> bool:
    return bool(value) and str(value).startswith(("https://", "http://"))
