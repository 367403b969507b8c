"""What an await costs besides its I/O (src/engine/inline.c, uring.c): an
O_DIRECT read is never tried inline and spends none of the loop's inline
budget; names in a cold tree stop being tried for a while, and a cached
name completes inline again soon after.  Results are compared with the
synchronous os calls; both engines."""
import asyncio
import os

import pytest

import linuxaio
from linuxaio import _engine
from linuxaio import os as aos

BLOCK = 4096


def test_odirect_awaits_spend_no_inline_budget(tmp_path):
    # 200 tasks start in one turn of the loop: 200 inline attempts there
    # would spend the budget (128 a turn) and count yields; O_DIRECT reads
    # are not attempts at all.
    p = tmp_path / "direct"
    data = os.urandom(256 * BLOCK)
    p.write_bytes(data)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_DIRECT)
    except OSError as e:
        pytest.skip(f"no O_DIRECT on this file system: {e}")

    async def one(i, buf):
        for k in range(3):
            off = ((i * 7 + k) % 256) * BLOCK
            assert await aos.preadinto(fd, buf, off) == BLOCK
            assert buf[:] == data[off:off + BLOCK]

    async def main():
        bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(200)]
        before = _engine._inline_stats()
        await asyncio.gather(*(one(i, b) for i, b in enumerate(bufs)))
        assert _engine._inline_stats() == before   # no inline call, no yield counted
    try:
        asyncio.run(main())
    finally:
        os.close(fd)


@pytest.mark.skipif(not _engine._inline_mounts()[0],
                    reason="a network or FUSE file system is mounted: stats are not tried inline")
def test_a_cached_name_completes_inline_again_after_a_cold_streak(tmp_path):
    # /proc/self/fd/N is a magic link: openat2(RESOLVE_CACHED) cannot
    # resolve it from the dentry cache, so each awaited stat of it is a
    # miss (a streak of them, and the name tries are skipped for a while).
    # A cached file after that: a probe among the next few finds it cached,
    # and from then on each completes inline.  The results are os.stat's.
    p = tmp_path / "cached"
    p.write_bytes(b"x" * 100)
    fd = os.open(p, os.O_RDONLY)
    magic = f"/proc/self/fd/{fd}"

    async def main():
        counts = []
        for _ in range(40):
            before = _engine._inline_stats()[0]
            st = await aos.stat(magic)
            assert (st.st_ino, st.st_size) == (os.stat(magic).st_ino, 100)
            counts.append(_engine._inline_stats()[0] - before)
        if any(counts):
            pytest.skip("this kernel resolves /proc/self/fd links from the dentry cache")
        inline = []
        for _ in range(16):
            await asyncio.sleep(0)   # a new turn: the loop's inline budget is whole
            before = _engine._inline_stats()[0]
            st = await aos.stat(p)
            assert st == os.stat(p)
            inline.append(_engine._inline_stats()[0] - before)
        # at most one probe interval (8) goes to the engine, then all inline
        assert inline[8:] == [1] * 8, inline
    try:
        asyncio.run(main())
    finally:
        os.close(fd)
