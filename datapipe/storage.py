"""Where a data run reads and writes: a local folder, or an object-store URI through a pyarrow filesystem.

`qimage data run s3://bucket/raw -o s3://bucket/clean` lists, reads and writes the bucket itself, from the driver
and from every Ray worker. Each worker opens the URI itself, so credentials from its node's environment never travel
through Ray (only what the URI itself holds does). pyarrow resolves the scheme (s3://, gs://, abfs://, hdfs://) and
reads its usual environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL for an
S3-compatible store (MinIO, Ceph), or URI query options such as `?endpoint_override=HOST:PORT&scheme=http`. A local
path goes through os and pathlib (LocalStore: pyarrow cannot list file names that are not UTF-8); both stores offer
the same few operations, which are all the pipeline uses.

A write is atomic either way: locally a file is written under a hidden temporary name and renamed over its final
name; an object store makes an object visible only once its upload has completed, so there the object is written
under its final key directly (a rename would be a copy).
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from qimage.errors import UserError


def _order(rel: str) -> list[str]:
    return rel.split("/")  # folder by folder, as pathlib orders paths (so a folder's plan is what it always was)


class Store:
    """A location. `uri` opens it again (in a Ray worker); `name` is what the manifest, the report and messages show
    (an object-store URI without credentials or query options). Paths below it are relative posix strings."""
    uri: str
    name: str
    local: bool

    def path(self, rel: str = "") -> str:
        raise NotImplementedError

    def contains(self, other: "Store") -> bool:
        """True when `other` is this location or below it, on the same filesystem."""
        raise NotImplementedError

    def relative(self, other: "Store") -> str:
        """`other`'s path relative to this location (when `contains(other)`)."""
        return other.path()[len(self.path()) + 1:]

    def row_count(self, rel: str) -> int | None:
        """Rows of a Parquet file from its footer; None when it is missing or unreadable (an interrupted write)."""
        try:
            return self._metadata(rel).num_rows
        except (OSError, ValueError, pa.ArrowException):
            return None

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode("utf-8")

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode("utf-8"))


@dataclass(frozen=True)
class LocalStore(Store):
    """A folder, through os and pathlib: file names need not be valid UTF-8 (pyarrow's local filesystem cannot list
    such names; Python keeps them as surrogate escapes)."""
    root: Path
    local = True

    @property
    def uri(self) -> str:
        return str(self.root)

    @property
    def name(self) -> str:
        return str(self.root)

    def path(self, rel: str = "") -> str:
        return str(self.root / rel) if rel else str(self.root)

    def contains(self, other: Store) -> bool:
        return isinstance(other, LocalStore) and other.root.is_relative_to(self.root)

    def relative(self, other: Store) -> str:
        return other.root.relative_to(self.root).as_posix()

    def _metadata(self, rel: str):
        return pq.read_metadata(self.root / rel)

    def is_dir(self) -> bool:
        return self.root.is_dir()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def files(self, rel: str = "", recursive: bool = True) -> list[str]:
        """Every file below (relative posix paths, in pathlib's order), except those with a hidden part (".name")."""
        base = self.root / rel
        found = base.rglob("*") if recursive else base.glob("*")
        out = [p.relative_to(self.root).as_posix() for p in found
               if p.is_file() and not any(part.startswith(".") for part in p.relative_to(base).parts)]
        return sorted(out, key=_order)

    def stats(self, rels: list[str]) -> list[tuple[int, int]]:
        """(size, mtime in ns) of each file (-1, -1 for a file that has gone)."""
        out = []
        for rel in rels:
            try:
                st = (self.root / rel).stat()
                out.append((st.st_size, st.st_mtime_ns))
            except OSError:
                out.append((-1, -1))
        return out

    def read_bytes(self, rel: str, limit: int | None = None) -> bytes:
        with open(self.root / rel, "rb") as f:
            return f.read() if limit is None else f.read(limit)

    def read_table(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.root / rel, columns=columns)

    def makedirs(self, rel: str) -> None:
        (self.root / rel).mkdir(parents=True, exist_ok=True)

    def remove_tree(self, rel: str) -> None:
        shutil.rmtree(self.root / rel, ignore_errors=True)

    def remove(self, rel: str) -> None:
        os.remove(self.root / rel)

    def write_bytes(self, rel: str, data: bytes) -> None:
        with self._atomic(rel) as tmp:
            tmp.write_bytes(data)

    def write_table(self, rel: str, table: pa.Table) -> None:
        with self._atomic(rel) as tmp:
            pq.write_table(table, tmp)

    @contextmanager
    def _atomic(self, rel: str):
        final = self.root / rel
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        try:
            yield tmp
            os.replace(tmp, final)  # rename(2): a reader sees the old file or the new one, never a part
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class ArrowStore(Store):
    """A location on a pyarrow filesystem (s3://, gs://, abfs://, hdfs://): `base` is its path inside `fs`."""
    uri: str
    fs: pafs.FileSystem
    base: str
    local = False

    def path(self, rel: str = "") -> str:
        return f"{self.base}/{rel}" if rel else self.base

    @property
    def name(self) -> str:
        return f"{self.uri.partition('://')[0]}://{self.base}"

    def _metadata(self, rel: str):
        return pq.read_metadata(self.path(rel), filesystem=self.fs)

    def contains(self, other: Store) -> bool:
        return (isinstance(other, ArrowStore) and self.fs.equals(other.fs)
                and (other.base == self.base or other.base.startswith(self.base + "/")))

    def is_dir(self) -> bool:
        try:  # the first request a run makes: a wrong endpoint or credentials surface here
            return self.fs.get_file_info(self.base).type == pafs.FileType.Directory
        except OSError as e:
            raise UserError(f"cannot reach {self.name}: {_first_line(e)}") from None

    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def files(self, rel: str = "", recursive: bool = True) -> list[str]:
        base = self.path(rel)
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=recursive, allow_not_found=True))
        out = []
        for info in infos:
            sub = info.path[len(base) + 1:]
            if info.type == pafs.FileType.File and not any(part.startswith(".") for part in sub.split("/")):
                out.append(f"{rel}/{sub}" if rel else sub)
        return sorted(out, key=_order)

    def stats(self, rels: list[str]) -> list[tuple[int, int]]:
        # one recursive listing (a request per 1,000 keys on S3), not a request per file
        listed = self.fs.get_file_info(pafs.FileSelector(self.base, recursive=True, allow_not_found=True))
        infos = {i.path: i for i in listed if i.type == pafs.FileType.File}
        found = [infos.get(self.path(r)) for r in rels]
        return [(i.size, i.mtime_ns or 0) if i is not None else (-1, -1) for i in found]

    def read_bytes(self, rel: str, limit: int | None = None) -> bytes:
        with self.fs.open_input_stream(self.path(rel)) as f:
            return f.read() if limit is None else f.read(limit)

    def read_table(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.path(rel), columns=columns, filesystem=self.fs)

    def makedirs(self, rel: str) -> None:
        pass  # an object store has no folders: a key's prefix is its folder

    def remove_tree(self, rel: str) -> None:
        path = self.path(rel)
        if self.fs.get_file_info(path).type == pafs.FileType.Directory:
            self.fs.delete_dir(path)

    def remove(self, rel: str) -> None:
        self.fs.delete_file(self.path(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        # an object becomes visible only when its upload completes, so it is written in place. The stream completes
        # the upload when closed, even by an exception: the bytes are ready before it opens, and a reader checks a
        # shard's row count in its footer (Store.row_count), not only that it exists
        with self.fs.open_output_stream(self.path(rel)) as f:
            f.write(data)

    def write_table(self, rel: str, table: pa.Table) -> None:
        buf = pa.BufferOutputStream()  # the whole file first: an interrupted encode never reaches the store
        pq.write_table(table, buf)
        self.write_bytes(rel, buf.getvalue().to_pybytes())


def is_uri(where) -> bool:
    return "://" in os.fspath(where)


def open_store(where) -> Store:
    """A local path (made absolute) or a filesystem URI; a Store is returned as it is."""
    if isinstance(where, Store):
        return where
    text = os.fspath(where)
    if not is_uri(text):
        return LocalStore(Path(text).expanduser().resolve())
    return _open_uri(text.rstrip("/"))


@lru_cache(maxsize=16)  # one client per URI and process: a Ray worker scores many shards of one run
def _open_uri(uri: str) -> Store:
    try:
        fs, base = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as e:
        raise UserError(f"cannot open {display_uri(uri)}: {_first_line(e)}") from None
    if isinstance(fs, pafs.LocalFileSystem):  # file:///path
        return LocalStore(Path(base).resolve())
    return ArrowStore(uri, fs, base.rstrip("/"))


def display_uri(text: str) -> str:
    """A path or URI as messages may show it: without credentials (`KEY:SECRET@`) or query options."""
    if not is_uri(text):
        return text
    parts = urlsplit(text)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
