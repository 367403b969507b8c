"""Generated trees for the whole-tree tests (linuxaio.shutil, walks, CLI),
and snapshots to compare two trees by."""
import hashlib
import os
import stat
import threading
import time

SIZES = [0, 1, 511, 4096, 65537, (1 << 20) + 123, (2 << 20) + 7]
NON_UTF8 = os.fsdecode(b"caf\xe9-\xff.bin")      # not UTF-8: surrogate-escaped


def make_tree(top, *, fifo=True, loops=True):
    """A small tree with every kind of entry the tests look at."""
    os.makedirs(top)
    j = lambda *p: os.path.join(top, *p)
    os.makedirs(j("dir", "sub", "deep"))
    os.makedirs(j("empty"))
    os.makedirs(j("dir2"))
    for i, size in enumerate(SIZES):
        with open(j("dir", f"f{i}.dat"), "wb") as f:
            f.write(os.urandom(size) if size < 70000 else bytes([i]) * size)
    with open(j("dir", "sub", "deep", "leaf.txt"), "w") as f:
        f.write("leaf\n")
    with open(j("sparse"), "wb") as f:
        f.truncate(3 << 20)
        f.seek(1 << 20)
        f.write(b"middle")
    with open(j(NON_UTF8), "wb") as f:
        f.write(b"not utf-8")
    os.link(j("dir", "f1.dat"), j("dir2", "hardlink.dat"))
    os.symlink("dir/f2.dat", j("link-to-file"))
    os.symlink("dir/sub", j("link-to-dir"))
    os.symlink("no-such-target", j("dangling"))
    if loops:
        os.symlink("loop", j("loop"))                 # ELOOP
    if fifo:
        os.mkfifo(j("dir2", "fifo"))
    os.chmod(j("dir", "f3.dat"), 0o600)
    os.chmod(j("dir", "sub"), 0o751)
    os.chmod(j("dir", "f4.dat"), 0o4755)
    os.utime(j("dir", "f5.dat"), ns=(1_000_000_123, 2_000_000_456))
    os.utime(j("dir", "sub", "deep"), ns=(3_000_000_789, 4_000_000_321))
    return top


def make_wide_tree(top, n_files=10_000, per_dir=500):
    os.makedirs(top)
    for i in range(n_files):
        d = os.path.join(top, f"d{i // per_dir:03d}")
        if i % per_dir == 0:
            os.mkdir(d)
        fd = os.open(os.path.join(d, f"f{i}"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x" * (i % 97))
        os.close(fd)
    return top


def snapshot(top, *, times=True, atimes=False):
    """rel path -> what matters of it: type, mode, size, data digest, the
    symlink target, mtime (ns); and the hard-link groups."""
    out = {}
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames + ([] if dirpath != top else [""]):
            p = os.path.join(dirpath, name) if name else top
            rel = os.path.relpath(p, top)
            st = os.lstat(p)
            item = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode)]
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    item += [st.st_size, hashlib.sha1(f.read()).hexdigest()]
                inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                item += [os.readlink(p)]
                item[1] = None          # a symlink's own mode means nothing on Linux
            if times and not stat.S_ISLNK(st.st_mode):
                item.append(st.st_mtime_ns)
            if atimes and stat.S_ISREG(st.st_mode):
                item.append(st.st_atime_ns)
            out[rel] = tuple(item)
    links = sorted(tuple(sorted(v)) for v in inodes.values() if len(v) > 1)
    return out, links


def symlink_swap_race(tmp_path, remove):
    """remove(top) of two trees while a thread swaps their directories for
    symlinks to a victim directory: nothing in the victim may go, and the
    swaps must have happened."""
    victim = tmp_path / "victim"
    victim.mkdir()
    for i in range(200):
        (victim / f"v{i}").write_bytes(b"v")
    for attempt in range(2):
        top = tmp_path / f"t{attempt}"
        for i in range(60):
            d = top / f"d{i:02d}"
            (d / "inner").mkdir(parents=True)
            for k in range(20):
                (d / f"x{k}").write_bytes(b"")
                (d / "inner" / f"y{k}").write_bytes(b"")
        stop = threading.Event()

        def swapper():
            while not stop.is_set():
                for i in range(60):
                    d = top / f"d{i:02d}"
                    try:
                        os.rename(d, tmp_path / f"moved{attempt}-{i}")
                        os.symlink(victim, d)
                    except OSError:
                        pass
                time.sleep(0.0005)     # let the removal hold the GIL too
        t = threading.Thread(target=swapper)
        t.start()
        try:
            remove(str(top))
        finally:
            stop.set()
            t.join()
        assert sorted(os.listdir(victim)) == sorted(f"v{i}" for i in range(200))
    # the swaps did happen while it ran (directories moved aside, links put in)
    assert any(n.startswith("moved") for n in os.listdir(tmp_path))
