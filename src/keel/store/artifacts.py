"""The artifact store: immutable blobs addressed by the sha256 of their bytes.

Blobs live under ``sha256/<first two hex digits>/<digest>`` in a local folder or behind
any fsspec URL. A write goes to a temporary name first and is renamed into place, so a
reader never sees half a blob; on an object store (S3, GCS, Azure) one PUT is already
all-or-nothing, so the blob is uploaded straight to its key. Every read re-hashes the
bytes and refuses a blob whose digest does not match: a tampered or truncated artifact is
an error, never a model.

On S3 the endpoint, region and credentials come from keel.yaml's ``storage: {s3: ...}``
(``storage_options`` turns it into s3fs's keyword arguments); what it leaves unset comes
from the standard AWS environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_ENDPOINT_URL_S3`` for an S3-compatible server, ``AWS_MAX_ATTEMPTS``), or from
fsspec's own ``FSSPEC_S3_*`` variables. A missing bucket, refused credentials, missing
credentials and an unreachable endpoint each raise ``ArtifactStoreUnavailable`` with one
sentence naming the cause.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from keel.errors import (
    ArtifactCorrupt,
    ArtifactError,
    ArtifactNotFound,
    ArtifactStoreUnavailable,
    MissingExtraError,
)

if TYPE_CHECKING:
    from keel.schema import StorageConfig

__all__ = [
    "ArtifactStore",
    "bucket_missing",
    "hash_file",
    "is_botocore",
    "is_refusal",
    "open_filesystem",
    "storage_options",
    "unavailable_reason",
    "without_credentials",
]

_CHUNK = 1 << 20
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}  # one PUT: all or nothing
_EXTRAS = {"s3": "s3", "s3a": "s3"}
_ENV_PREFIXES = ("AWS_", "FSSPEC_")  # what configures an object store's client
T = TypeVar("T")
StorageOptions = Mapping[str, Mapping[str, Any]]  # protocol -> the filesystem's keywords


class ArtifactStore:
    """Put and get content-addressed blobs in a local folder or an fsspec location;
    ``storage`` holds the filesystem's options by protocol (see ``storage_options``).

    ``task_storage`` is what a task on another machine is sent of them: all, or with
    ``send_credentials=False`` (keel.yaml's ``compute.credentials: workers``) only those
    that are not credentials, the workers finding theirs in their own environment.
    """

    def __init__(
        self,
        location: str | Path,
        storage: StorageOptions | None = None,
        *,
        send_credentials: bool = True,
    ) -> None:
        self.location = str(location)
        self.storage: StorageOptions = storage or {}
        self.send_credentials = send_credentials
        self.task_storage = self.storage if send_credentials else without_credentials(self.storage)
        self._local = "://" not in self.location or self.location.startswith("file://")
        self._fs: Any = None if self._local else _filesystem(self.location, self.storage)
        self._root = self.location.removeprefix("file://").rstrip("/")

    @property
    def is_local(self) -> bool:
        """Whether blobs are files on this machine (``local_path`` works)."""
        return self._local

    # -- writing --------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its sha256 hex digest. Storing twice is a no-op."""
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self._write(digest, iter([data]))
        return digest

    def put_file(self, path: Path) -> str:
        """Store a file's bytes, streaming; return the digest."""
        digest = hash_file(path)
        if not self.exists(digest):
            self._write(digest, _chunks_of(path), source=path)
        return digest

    def put_stream(self, chunks: Iterable[bytes]) -> str:
        """Store the bytes ``chunks`` yields (an object read from another store, say),
        hashed as they pass: written under a temporary name, then moved to their digest
        (or dropped when that is already stored); return the digest."""
        hasher = hashlib.sha256()

        def hashed() -> Iterator[bytes]:
            try:
                for chunk in chunks:
                    hasher.update(chunk)
                    yield chunk
            except Exception as error:  # the source failed, not this store
                raise _SourceFailed(error) from error

        try:
            if self._local:
                return _stream_local(Path(self._root), hashed(), hasher, self._key)
            return self._remote(lambda: self._stream_remote(hashed(), hasher))
        except _SourceFailed as failed:
            raise failed.error from None

    def _stream_remote(self, chunks: Iterator[bytes], hasher: Any) -> str:
        tmp = f"{self._root}/tmp/{uuid.uuid4().hex}.part"
        try:
            with self._fs.open(tmp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            digest = str(hasher.hexdigest())
            if not self._fs.exists(self._key(digest)):
                self._fs.mv(tmp, self._key(digest))
        finally:
            if self._fs.exists(tmp):
                self._fs.rm(tmp)
        return digest

    @contextmanager
    def scratch(self) -> Iterator[ArtifactStore]:
        """A store of its own under ``scratch/<unique name>/`` beside this one's blobs, for
        files that live as long as the block (a build's inputs for its tasks), removed
        with everything in it when the block ends, however it ends. Being a store of its
        own, removing it removes nothing another artifact or build shares."""
        store = ArtifactStore(
            f"{self.location.rstrip('/')}/scratch/{uuid.uuid4().hex}",
            self.storage,
            send_credentials=self.send_credentials,
        )
        try:
            yield store
        except BaseException:
            with suppress(Exception):  # the block's own failure is the one to report
                store._remove_all()
            raise
        store._remove_all()

    def _remove_all(self) -> None:
        if self._local:
            shutil.rmtree(self._root, ignore_errors=True)
        elif self._remote(lambda: self._fs.exists(self._root)):
            self._remote(lambda: self._fs.rm(self._root, recursive=True))

    # -- reading --------------------------------------------------------------------

    def get_bytes(self, digest: str) -> bytes:
        """The verified bytes of an artifact."""
        data = self._read_all(digest)
        _verify(digest, hashlib.sha256(data).hexdigest())
        return data

    def fetch(self, digest: str, dest: Path) -> Path:
        """Copy an artifact to ``dest``, verifying it; ``dest`` appears only when complete."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".keel-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, self._open(digest) as src:
                while chunk := self._remote(lambda: src.read(_CHUNK)):
                    hasher.update(chunk)
                    out.write(chunk)
            _verify(digest, hasher.hexdigest())
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def local_path(self, digest: str) -> Path:
        """A verified local path to read the artifact from (local stores only)."""
        if not self._local:
            raise ArtifactError(f"{self.location} is not a local folder; use fetch() instead")
        path = Path(self._key(digest))
        if not path.exists():
            raise self._missing(digest)
        _verify(digest, hash_file(path))
        return path

    def url(self, digest: str) -> str:
        """Where the blob lies: its path in a local folder, its URL (``s3://...``) in an
        object store."""
        return self._key(digest)

    def exists(self, digest: str) -> bool:
        key = self._key(digest)
        if self._local:
            return os.path.exists(key)
        return bool(self._remote(lambda: self._fs.exists(key)))

    def digests(self) -> Iterator[str]:
        """Every stored digest (for audits and garbage collection)."""
        base = f"{self._root}/sha256"
        if self._local:
            names = [path.name for path in Path(base).glob("*/*")]
        else:
            names = [key.rsplit("/", 1)[-1] for key in self._remote(lambda: self._fs.find(base))]
        yield from sorted(name for name in names if _DIGEST.match(name))

    # -- internals ------------------------------------------------------------------

    def _key(self, digest: str) -> str:
        if not _DIGEST.match(digest):
            raise ArtifactError(f"'{digest}' is not a sha256 digest (64 lowercase hex digits)")
        return f"{self._root}/sha256/{digest[:2]}/{digest}"

    def _write(self, digest: str, chunks: Iterator[bytes], source: Path | None = None) -> None:
        key = self._key(digest)
        if self._local:
            _write_local(Path(key), Path(self._root) / "tmp", chunks)
        elif _protocol(self._fs) in _ATOMIC_PUT:
            self._remote(lambda: self._put_object(key, chunks, source))
        else:
            self._remote(lambda: self._put_renamed(key, chunks))

    def _put_object(self, key: str, chunks: Iterator[bytes], source: Path | None) -> None:
        """Upload in one go (a file streams, in parts if large): the key appears only
        once the whole blob is stored, never half of it."""
        if source is not None:
            self._fs.put_file(str(source), key)
        else:
            self._fs.pipe_file(key, b"".join(chunks))

    def _put_renamed(self, key: str, chunks: Iterator[bytes]) -> None:
        tmp = f"{self._root}/tmp/{uuid.uuid4().hex}.part"
        with self._fs.open(tmp, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        self._fs.mv(tmp, key)

    def _open(self, digest: str) -> IO[bytes]:
        key = self._key(digest)
        try:
            if self._local:
                return open(key, "rb")
            return self._remote(lambda: self._fs.open(key, "rb"), reading=True)
        except FileNotFoundError:
            raise self._missing(digest) from None

    def _read_all(self, digest: str) -> bytes:
        with self._open(digest) as handle:
            return self._remote(handle.read)

    def _remote(self, call: Callable[[], T], *, reading: bool = False) -> T:
        """Run one call on the remote filesystem, its failures as one clear sentence.

        ``reading``: a missing key is the caller's ``FileNotFoundError`` (no such
        artifact), unless it is the bucket that is missing.
        """
        try:
            return call()
        except FileNotFoundError as error:
            if reading and not bucket_missing(error):
                raise
            raise self._unavailable(error) from None
        except (OSError, TimeoutError) as error:
            raise self._unavailable(error) from None
        except Exception as error:
            if is_botocore(error):  # no credentials, endpoint unreachable, ...
                raise self._unavailable(error) from None
            raise

    def _missing(self, digest: str) -> ArtifactNotFound:
        return ArtifactNotFound(f"artifact {digest[:12]} is not in {self.location}")

    def _unavailable(self, error: BaseException) -> ArtifactStoreUnavailable:
        return ArtifactStoreUnavailable(unavailable_reason(self.location, error))


class _SourceFailed(Exception):
    """What ``put_stream``'s source raised, carried past this store's own error handling."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def unavailable_reason(location: str, error: BaseException, setting: str = "artifacts") -> str:
    """One sentence on why the object store at ``location`` failed, and what to do;
    ``setting`` is the keel.yaml key that names the location."""
    name = type(error).__name__
    text = str(error) or name
    if bucket_missing(error):
        bucket = location.split("://", 1)[-1].split("/", 1)[0]
        return (
            f"bucket '{bucket}' does not exist ({setting}: {location}); create it or point "
            f"{setting}: in keel.yaml at an existing bucket"
        )
    if name == "NoCredentialsError":
        return _no_credentials(location)
    if isinstance(error, PermissionError):
        return (
            f"{location} refused access ({text}); check that the credentials may read and "
            "write the bucket"
        )
    return f"cannot reach {location} ({text}); check the endpoint and that the store is up"


def _no_credentials(location: str) -> str:
    """Where credentials are missing (this process, or a Dask worker) and how to give them."""
    worker = _on_worker()
    if worker is None:
        return (
            f"no credentials to open {location}: set storage.s3.key and secret in keel.yaml "
            "(as ${VAR}), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile) "
            "for this process"
        )
    return (
        f"no credentials to open {location} on Dask worker {worker}: set AWS_ACCESS_KEY_ID "
        "and AWS_SECRET_ACCESS_KEY (or an AWS profile or instance role) in the workers' "
        "environment, or compute.credentials: send in keel.yaml to send storage.s3's key "
        "and secret with the tasks"
    )


def _on_worker() -> str | None:
    """The address of the Dask worker running this code, if it runs on one."""
    from keel.compute.engine import current_worker

    worker = current_worker()
    return None if worker is None else str(worker.address)


def bucket_missing(error: BaseException) -> bool:
    """Whether an fsspec error says the bucket itself is missing (S3's NoSuchBucket)."""
    return isinstance(error, FileNotFoundError) and "bucket does not exist" in str(error)


def is_refusal(error: BaseException) -> bool:
    """Whether the store answered and refused: no such bucket, no access, no credentials."""
    return (
        bucket_missing(error)
        or isinstance(error, PermissionError)
        or type(error).__name__ == "NoCredentialsError"
    )


def is_botocore(error: BaseException) -> bool:
    """Whether the error comes from the AWS client (never an ``OSError``) rather than s3fs."""
    return type(error).__module__.startswith(("botocore", "aiobotocore"))


def _protocol(fs: Any) -> str:
    protocol = fs.protocol
    return str(protocol if isinstance(protocol, str) else protocol[0])


def _filesystem(location: str, storage: StorageOptions) -> Any:
    try:
        return open_filesystem(location, storage)[0]
    except ImportError as error:
        protocol = location.split("://", 1)[0]
        if protocol in _EXTRAS:
            raise MissingExtraError("s3fs", _EXTRAS[protocol]) from None
        raise ArtifactError(f"cannot open artifact store {location}: {error}") from None
    except ValueError as error:
        raise ArtifactError(f"cannot open artifact store {location}: {error}") from None


_OPENED: dict[tuple[str, ...], Any] = {}
_OPENED_LOCK = threading.Lock()


def open_filesystem(url: str, storage: StorageOptions | None = None) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` and the path in it; ``storage`` holds options by
    protocol (keel.yaml's ``storage:``), which win over the environment.

    One filesystem per protocol, options and state of the environment that configures it
    (``AWS_*``, ``FSSPEC_*``): credentials or an endpoint set later are used, and an
    unchanged environment reuses the client (building one takes about a second). They
    are kept for the life of the process on purpose: s3fs closes a collected client on
    whatever event loop the collecting thread runs, which breaks that loop's tasks.
    """
    import fsspec

    protocol = url.split("://", 1)[0] if "://" in url else "file"
    options = dict((storage or {}).get(_FAMILY.get(protocol, protocol), {}))
    settings = sorted(
        f"{name}={value}" for name, value in os.environ.items() if name.startswith(_ENV_PREFIXES)
    )
    key = (protocol, repr(sorted(options.items())), *settings)
    with _OPENED_LOCK:
        fs = _OPENED.get(key)
        if fs is None:
            fs = _OPENED[key] = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
    return fs, str(fs._strip_protocol(url))


_FAMILY = {"s3a": "s3"}  # protocols that take another's options


def storage_options(config: StorageConfig | None) -> dict[str, dict[str, Any]]:
    """keel.yaml's ``storage:`` as fsspec options by protocol (s3fs's keyword arguments);
    what it leaves unset is not passed, so the environment still provides it."""
    s3 = config.s3 if config is not None else None
    if s3 is None:
        return {}
    options: dict[str, Any] = {
        name: value
        for name, value in (
            ("endpoint_url", s3.endpoint_url),
            ("key", s3.key),
            ("secret", s3.secret),
            ("token", s3.token),
            ("profile", s3.profile),
        )
        if value is not None
    }
    if s3.region is not None:
        options["client_kwargs"] = {"region_name": s3.region}
    client = _client_config(s3)
    if client:
        options["config_kwargs"] = client
    return {"s3": options} if options else {}


_CREDENTIAL_WORDS = {"key", "secret", "token", "password", "passwd", "profile", "credential",
                     "credentials"}  # fmt: skip
_CREDENTIAL_NAMES = {"connection_string", "sas"}  # Azure's, whole


def without_credentials(storage: StorageOptions) -> dict[str, dict[str, Any]]:
    """``storage`` without the options that are (or choose) credentials, at any depth:
    those named ``key``, ``secret``, ``token``, ``password`` or ``profile``, alone or as
    a word of the name (``aws_access_key_id``, ``aws_secret_access_key``,
    ``aws_session_token``, ``account_key``, ``sas_token``...). What is left (endpoint,
    region, retries, addressing style) is safe to send to other machines."""

    def kept(options: Mapping[str, Any]) -> dict[str, Any]:
        return {
            name: kept(value) if isinstance(value, Mapping) else value
            for name, value in options.items()
            if not _is_credential(name)
        }

    return {protocol: kept(options) for protocol, options in storage.items()}


def _is_credential(name: str) -> bool:
    lowered = name.lower()
    return lowered in _CREDENTIAL_NAMES or bool(_CREDENTIAL_WORDS & set(lowered.split("_")))


def _client_config(s3: Any) -> dict[str, Any]:
    """The botocore client settings (retries, timeouts, addressing) that are set."""
    client: dict[str, Any] = {}
    if s3.max_attempts is not None:
        client["retries"] = {"max_attempts": s3.max_attempts}
    if s3.connect_timeout is not None:
        client["connect_timeout"] = s3.connect_timeout.total_seconds()
    if s3.read_timeout is not None:
        client["read_timeout"] = s3.read_timeout.total_seconds()
    if s3.addressing_style is not None:
        client["s3"] = {"addressing_style": s3.addressing_style}
    return client


@contextmanager
def _temp_written(tmp_dir: Path, chunks: Iterator[bytes]) -> Iterator[str]:
    """``chunks`` written and fsync'd to a temporary file in ``tmp_dir``; the file is
    removed after the block unless the block moved it away."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        yield tmp
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_local(path: Path, tmp_dir: Path, chunks: Iterator[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temp_written(tmp_dir, chunks) as tmp:
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)


def _stream_local(
    root: Path, chunks: Iterator[bytes], hasher: Any, key: Callable[[str], str]
) -> str:
    with _temp_written(root / "tmp", chunks) as tmp:
        digest = str(hasher.hexdigest())
        path = Path(key(digest))
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
    return digest


def hash_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    hasher = hashlib.sha256()
    for chunk in _chunks_of(path):
        hasher.update(chunk)
    return hasher.hexdigest()


def _chunks_of(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _verify(expected: str, actual: str) -> None:
    if actual != expected:
        raise ArtifactCorrupt(
            f"artifact {expected[:12]} is corrupt (its bytes hash to {actual[:12]}); it was "
            "modified or truncated after it was written: restore it or produce it again"
        )
