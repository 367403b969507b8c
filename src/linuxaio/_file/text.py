"""AsyncTextFile: decoding, encoding and newline translation over an
AsyncBufferedFile (io.TextIOWrapper)."""

from __future__ import annotations

import codecs
import io
import os as _os
import warnings
from operator import index as _index

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable
    from .buffered import AsyncBufferedFile

from .base import AsyncFile, UnsupportedOperation, _TEXT_CHUNK, _readlines, _size_arg


_COOKIE_FIELDS = ((0, 64), (64, 32), (96, 32), (128, 32), (160, 8))


def _pack_cookie(pos: int, flags: int = 0, feed: int = 0, skip: int = 0, eof: bool = False) -> int:
    # The builtin's layout (a little-endian C struct: off_t, 3 ints, a char),
    # so cookies compare equal to the builtin's.
    return pos | flags << 64 | feed << 96 | skip << 128 | int(eof) << 160


def _unpack_cookie(cookie: int) -> tuple[int, int, int, int, int]:
    if cookie >> 168:
        raise OverflowError("int too big to convert")
    return tuple((cookie >> shift) & ((1 << bits) - 1) for shift, bits in _COOKIE_FIELDS)  # type: ignore[return-value]


def _detached_buffer() -> Any:
    """What a detached text file holds instead of its buffer: a closed one."""
    from .buffered import AsyncBufferedFile
    return AsyncBufferedFile.__new__(AsyncBufferedFile)


class AsyncTextFile(AsyncFile):
    """A text file over an AsyncBufferedFile (``buffer``), like io.TextIOWrapper."""

    def __init__(self, buffer: AsyncBufferedFile, encoding: str, errors: str,
                 newline: str | None, line_buffering: bool, mode: str) -> None:
        self._b = buffer
        self._encoding = encoding
        self._errors = errors
        self._mode = mode
        self._line_buffering = line_buffering
        self._readuniversal = not newline
        self._readtranslate = newline is None
        self._writetranslate = newline != ""
        self._writenl = newline or _os.linesep
        # the line end readline looks for (None: any of \r, \n, \r\n)
        if newline is None or newline == "\n":
            self._nl, self._nllen = "\n", 1
        elif newline == "":
            self._nl, self._nllen = None, 0
        else:
            self._nl, self._nllen = newline, len(newline)
        self._decoder: Any = None
        self._encoder: Any = None
        if buffer._readable:
            dec = codecs.getincrementaldecoder(encoding)(errors)
            if self._readuniversal:
                dec = io.IncrementalNewlineDecoder(dec, self._readtranslate)
            self._decoder = dec
        if buffer._writable:
            self._encoder = codecs.getincrementalencoder(encoding)(errors)
            if buffer._seekable and buffer._tell_u() != 0:
                try:
                    self._encoder.setstate(0)   # no BOM in the middle of a file
                except LookupError:
                    pass
        # Decoded text and how far it has been read.
        self._decoded = ""
        self._dpos = 0
        # The snapshot (tell's starting point): _chunk[_snap_off:] are the bytes
        # fed to the decoder since a point where its buffer was empty and its
        # flags were _snap_flags; they decoded to _decoded[_snap_char:].
        # _chunk is None when there is none (then the position is the buffer's).
        self._chunk: bytes | None = None
        self._snap_off = 0
        self._snap_flags = 0
        self._snap_char = 0

    # ---- attributes ----

    @property
    def buffer(self) -> AsyncBufferedFile:
        return self._b

    @property
    def name(self) -> Any:
        return self._b.name

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def closed(self) -> bool:
        return self._b._closed

    @property
    def encoding(self) -> str:
        return self._encoding

    @property
    def errors(self) -> str:
        return self._errors

    @property
    def newlines(self) -> Any:
        return getattr(self._decoder, "newlines", None)

    @property
    def line_buffering(self) -> bool:
        return self._line_buffering

    @property
    def write_through(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._b.fileno()

    def readable(self) -> bool:
        return self._b.readable()

    def writable(self) -> bool:
        return self._b.writable()

    def seekable(self) -> bool:
        return self._b.seekable()

    async def isatty(self) -> bool:
        return await self._b.isatty()

    def __repr__(self) -> str:
        if self._b._closed:
            return "<linuxaio.AsyncTextFile [closed]>"
        return (f"<linuxaio.AsyncTextFile name={self.name!r} mode={self._mode!r} "
                f"encoding={self._encoding!r}>")

    def _check_open(self) -> None:
        if self._b._closed:
            raise ValueError("I/O operation on closed file.")

    def _check_readable(self) -> None:
        if self._b._closed:
            raise ValueError("I/O operation on closed file.")
        if self._decoder is None:
            raise UnsupportedOperation("not readable")

    async def _lock(self) -> AsyncBufferedFile:
        b = self._b
        if b._busy:
            await b._wait_idle("I/O operation on closed file.")
        b._busy = True
        return b

    # ---- reading ----

    def _save(self) -> tuple:
        return (self._decoded, self._dpos, self._chunk, self._snap_off, self._snap_flags,
                self._snap_char, self._decoder.getstate())

    def _rollback(self, saved: tuple, consumed: list) -> None:
        """Undo a read that failed half-way: text state, decoder, and the bytes
        taken from the buffer go back."""
        (self._decoded, self._dpos, self._chunk, self._snap_off, self._snap_flags,
         self._snap_char, state) = saved
        self._decoder.setstate(state)
        if consumed:
            self._b._unread(b"".join(consumed))

    async def _fill(self, hint: int, consumed: list) -> bool:
        """Decode the next chunk into _decoded (whose text must all have been
        used) and take a snapshot.  False at the end of the file, when the
        decoder's final flush gave nothing more (as the builtin counts it)."""
        dec = self._decoder
        buf, flags = dec.getstate()
        raw = await self._b._read1_u(hint if hint > _TEXT_CHUNK else _TEXT_CHUNK)
        consumed.append(raw)
        text = dec.decode(raw, not raw)
        self._chunk = buf + raw if buf else raw
        self._snap_off = 0
        self._snap_flags = flags
        self._snap_char = 0
        self._decoded = text
        self._dpos = 0
        return bool(raw or text)

    async def read(self, size: Any = -1) -> str:
        n = _size_arg(size)
        self._check_readable()
        if not self._b._busy and n >= 0 and len(self._decoded) - self._dpos >= n:
            p = self._dpos
            self._dpos = p + n
            return self._decoded[p:p + n]
        b = await self._lock()
        try:
            if n < 0:
                return await self._readall_u()
            return await self._read_u(n)
        finally:
            b._release()

    async def _readall_u(self) -> str:
        saved = self._save()
        consumed: list = []
        try:
            rest = self._decoded[self._dpos:]
            raw = await self._b._readall_u()
            consumed.append(raw)
            text = self._decoder.decode(raw, True)
        except BaseException:
            self._rollback(saved, consumed)
            raise
        self._decoded, self._dpos, self._chunk = "", 0, None
        return rest + text if rest else text

    async def _read_u(self, n: int) -> str:
        saved = self._save()
        consumed: list = []
        try:
            d, p = self._decoded, self._dpos
            if len(d) - p >= n:
                self._dpos = p + n
                return d[p:p + n]
            parts = [d[p:]]
            total = len(d) - p
            self._dpos = len(d)
            while total < n:
                more = await self._fill(n - total, consumed)
                d = self._decoded
                take = min(n - total, len(d))
                parts.append(d[:take])
                self._dpos = take
                total += take
                if not more:
                    break
        except BaseException:
            self._rollback(saved, consumed)
            raise
        return "".join(parts)

    def _eol(self, d: str, p: int, parts: list) -> int:
        """The end of the first line in d[p:] (just past its line end), or -1."""
        nl = self._nl
        if nl is not None:
            if nl == "\r\n" and p == 0 and parts and parts[-1].endswith("\r") and d.startswith("\n"):
                return 1       # the \r ended the text before
            i = d.find(nl, p)
            return i + self._nllen if i >= 0 else -1
        # newline='': \r, \n or \r\n; a \r is never last in d except at the end
        # of the file (the newline decoder holds it back until it knows).
        i = d.find("\n", p)
        j = d.find("\r", p, i if i >= 0 else len(d))
        if j >= 0:
            return j + 2 if d.startswith("\n", j + 1) else j + 1
        return i + 1 if i >= 0 else -1

    async def readline(self, size: Any = -1) -> str:
        limit = _size_arg(size)
        if not self._b._busy and limit < 0:
            d, p = self._decoded, self._dpos
            end = self._eol(d, p, ())
            if end >= 0:
                self._dpos = end
                return d[p:end]
        self._check_readable()
        b = await self._lock()
        try:
            return await self._readline_u(limit)
        finally:
            b._release()

    async def _readline_u(self, limit: int) -> str:
        saved = self._save()
        consumed: list = []
        try:
            if limit == 0:
                # As the builtin: it decodes until it has text, or to the end.
                while self._dpos == len(self._decoded):
                    if not await self._fill(0, consumed):
                        self._decoded, self._dpos, self._chunk = "", 0, None
                        break
                return ""
            parts: list = []
            total = 0
            eof = False
            while True:
                d, p = self._decoded, self._dpos
                end = self._eol(d, p, parts)
                if end < 0 and (limit < 0 or total + len(d) - p < limit):
                    if len(d) > p:
                        parts.append(d[p:] if p else d)
                        total += len(d) - p
                    self._dpos = len(d)
                    if eof:
                        if not d:       # nothing more: no snapshot, as the builtin
                            self._decoded, self._dpos, self._chunk = "", 0, None
                        break
                    eof = not await self._fill(0, consumed)
                    continue
                if end < 0 or (limit >= 0 and total + end - p > limit):
                    end = p + limit - total
                parts.append(d[p:end])
                self._dpos = end
                break
        except BaseException:
            self._rollback(saved, consumed)
            raise
        return "".join(parts)

    async def readlines(self, hint: Any = -1) -> list:
        return await _readlines(self, _size_arg(hint))

    def __aiter__(self):
        return self

    async def __anext__(self) -> str:
        nl = self._nl
        if nl is not None and not self._b._busy:
            d = self._decoded
            p = self._dpos
            i = d.find(nl, p)
            if i >= 0:
                i += self._nllen
                self._dpos = i
                return d[p:i]
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # ---- writing ----

    async def write(self, s: str) -> int:
        if self._b._closed:
            raise ValueError("I/O operation on closed file.")
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if self._encoder is None:
            raise UnsupportedOperation("not writable")
        length = len(s)
        haslf = (self._writetranslate or self._line_buffering) and "\n" in s
        if haslf and self._writetranslate and self._writenl != "\n":
            s = s.replace("\n", self._writenl)
        flush = self._line_buffering and (haslf or "\r" in s)
        b = self._b
        locked = b._busy
        if locked:
            await self._lock()
        try:
            data = self._encoder.encode(s)
            # Text read ahead is dropped (the bytes go at the buffer's position)
            # and the decoder starts afresh, as the builtin's.
            self._decoded, self._dpos, self._chunk = "", 0, None
            if self._decoder is not None:
                self._decoder.reset()
            if not locked:
                if not flush and b._try_buffer(data):
                    return length
                b._busy = locked = True
            await b._write_u(data)
            if flush:
                await b._flush_u()
        finally:
            if locked:
                b._release()
        return length

    async def writelines(self, lines: Iterable[str]) -> None:
        self._check_open()
        for line in lines:
            await self.write(line)

    async def flush(self) -> None:
        self._check_open()
        b = self._b
        if not b._wbuf and not b._busy:
            return
        await self._lock()
        try:
            await b._flush_u()
        finally:
            b._release()

    # ---- position ----

    def _check_seekable(self) -> None:
        self._check_open()
        if not self._b._seekable:
            raise UnsupportedOperation("underlying stream is not seekable")

    async def tell(self) -> int:
        self._check_seekable()
        b = await self._lock()
        try:
            await b._flush_u()
            return self._tell_u()
        finally:
            b._release()

    def _tell_u(self) -> int:
        pos = self._b._tell_u()
        chunk = self._chunk
        if self._decoder is None or chunk is None:
            return pos
        off = self._snap_off
        base = pos - (len(chunk) - off)
        flags = self._snap_flags
        need = self._dpos - self._snap_char
        if need <= 0:
            return _pack_cookie(base, flags)
        dec = self._decoder
        saved = dec.getstate()
        try:
            return self._locate(chunk, off, base, flags, need)
        finally:
            dec.setstate(saved)

    def _locate(self, chunk: bytes, off: int, base: int, flags: int, need: int) -> int:
        """The cookie of the point `need` characters past the snapshot.

        It names the last point at or before it where the decoder holds no
        bytes (a "safe" point: seek starts decoding there), plus the bytes to
        feed and the characters to skip from there, and moves the snapshot up
        to that safe point so that the next tell starts from it."""
        dec = self._decoder
        end = len(chunk)

        def count(k: int, final: bool = False) -> tuple[int, bytes, int]:
            dec.setstate((b"", flags))
            n = len(dec.decode(chunk[off:k], final))
            buf, fl = dec.getstate()
            return n, buf, fl

        # k_min: the fewest bytes that decode to at least `need` characters.
        # Start from a guess at the chunk's bytes-per-character ratio (exact
        # for 8-bit and fixed-width text), then gallop and bisect.
        nchars = len(self._decoded) - self._snap_char
        guess = off + (need * (end - off) // nchars if nchars > 0 else need)
        guess = min(max(guess, off + 1), end)
        if count(guess)[0] >= need:
            hi, step = guess, 1
            lo = hi - 1
            while lo > off and count(lo)[0] >= need:
                hi = lo
                step *= 2
                lo = max(off, hi - step)
        else:
            lo, step = guess, 1
            hi = min(end, lo + 1)
            while count(hi)[0] < need:
                if hi == end:
                    hi = -1       # not even the whole chunk: needs the decoder's final flush
                    break
                lo = hi
                step *= 2
                hi = min(end, lo + step)
        if hi >= 0:
            while hi - lo > 1:     # count(lo) < need <= count(hi)
                mid = (lo + hi) // 2
                if count(mid)[0] >= need:
                    hi = mid
                else:
                    lo = mid
            kmin, eof = hi, False
            n, buf, fl = count(kmin)
            if n == need and not buf:
                self._advance(kmin, fl, need)
                return _pack_cookie(base + kmin - off, fl)
            k = kmin - 1
        else:
            kmin, eof = end, True
            if count(end, True)[0] < need:
                raise OSError("can't reconstruct logical file position")
            k = end
        # Walk back to the nearest safe point.
        while k > off:
            n, buf, fl = count(k)
            if not buf:
                break
            k -= 1
        else:
            n, fl = 0, flags
        self._advance(k, fl, n)
        return _pack_cookie(base + k - off, fl, kmin - k, need - n, eof)

    def _advance(self, k: int, flags: int, nchars: int) -> None:
        self._snap_off = k
        self._snap_flags = flags
        self._snap_char += nchars

    async def seek(self, cookie: Any, whence: int = 0) -> int:
        cookie = _index(cookie)
        self._check_seekable()
        b = await self._lock()
        try:
            if whence == 1:
                if cookie != 0:
                    raise UnsupportedOperation("can't do nonzero cur-relative seeks")
                await b._flush_u()
                cookie = self._tell_u()
                whence = 0
            if whence == 2:
                if cookie != 0:
                    raise UnsupportedOperation("can't do nonzero end-relative seeks")
                await b._flush_u()
                self._decoded, self._dpos, self._chunk = "", 0, None
                if self._decoder is not None:
                    self._decoder.reset()
                pos = b._seek_u(0, 2)
                self._reset_encoder(pos)
                return pos
            if whence != 0:
                raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
            if cookie < 0:
                raise ValueError(f"negative seek position {cookie}")
            await b._flush_u()
            start, flags, feed, skip, need_eof = _unpack_cookie(cookie)
            b._seek_u(start, 0)
            self._decoded, self._dpos, self._chunk = "", 0, None
            dec = self._decoder
            if dec is not None:
                if start == 0 and flags == 0:
                    dec.reset()      # the start of the file: as the builtin, not setstate
                else:
                    dec.setstate((b"", flags))
                self._chunk, self._snap_off, self._snap_flags, self._snap_char = b"", 0, flags, 0
            if skip:
                if dec is None:
                    raise OSError("can't restore logical file position")
                data = await b._read_u(feed)
                text = dec.decode(data, bool(need_eof))
                self._chunk = data
                self._decoded = text
                if len(text) < skip:
                    raise OSError("can't restore logical file position")
                self._dpos = skip
            self._reset_encoder(cookie)
            return cookie
        finally:
            b._release()

    def _reset_encoder(self, position: int) -> None:
        enc = self._encoder
        if enc is not None:
            if position == 0:
                enc.reset()
            else:
                enc.setstate(0)

    async def truncate(self, pos: Any = None) -> int:
        self._check_open()
        await self.flush()
        if pos is None:
            pos = await self.tell()
        return await self._b.truncate(pos)

    # ---- positional I/O, closing ----

    async def pread(self, n: int, offset: int) -> bytes:
        return await self._b.pread(n, offset)

    async def preadinto(self, buffer: Any, offset: int) -> int:
        return await self._b.preadinto(buffer, offset)

    async def pwrite(self, data: Any, offset: int) -> int:
        return await self._b.pwrite(data, offset)

    async def detach(self) -> Any:
        """Write out pending text and hand over the binary file underneath
        (``buffer``); text read ahead and not yet returned is lost, as with
        io.TextIOWrapper.detach.  This file is unusable afterwards."""
        b = self._b
        if b._closed:
            raise ValueError("underlying buffer has been detached" if self._detached
                             else "I/O operation on closed file.")
        await self.flush()
        self._detach_prepare()
        return b

    def _detach_prepare(self) -> None:
        self._decoded, self._dpos, self._chunk = "", 0, None
        self._b = _detached_buffer()
        self._detached = True

    _detached = False

    async def aclose(self) -> None:
        b = self._b
        if b._closed:
            if self._detached:
                raise ValueError("underlying buffer has been detached")
            return
        self._decoded, self._dpos, self._chunk = "", 0, None
        await b.aclose()

    close = aclose

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __del__(self) -> None:
        b = getattr(self, "_b", None)
        if b is None or b._closed:
            return
        try:
            warnings.warn(f"unclosed file {self!r}", ResourceWarning, stacklevel=2, source=self)
        except Exception:
            pass
        b._close_sync()


