#!/usr/bin/env python3
"""make coverage: the shim's view of real programs against strace's.

Each program runs once, as `strace -f -y -e trace=%file,%desc -o LOG
build/restrack run --store STORE -- PROGRAM`: both tracers see the very same
run, so temporary names (mkstemp, multiprocessing's semaphores) agree. From
the strace log only the workload's processes count (every process after its
first successful execve, and its descendants), not restrack's own (the
log's first execve). A path
counts when the call succeeded; strace's relative paths are resolved against
the dirfd or cwd that `-y` prints. glibc's internal opens, which the shim
cannot see by construction (docs/shim.md, "Known blind spots"), are left out
of both sides and counted apart.

Prints per program covered/total (pct) of strace's successful absolute paths
that the shim also recorded, and the first missed paths. Exits 1 when a
program cannot be traced, so a broken setup is never read as coverage.
"""
import codecs
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESTRACK = os.path.join(ROOT, "build", "restrack")

# docs/shim.md, "Known blind spots": glibc's internal opens (non-interposable
# __open_nocancel and friends) and the loader's before the shim runs.
GLIBC_INTERNAL_EXACT = {
    "/etc/ld.so.cache", "/etc/ld.so.preload",
    "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/nsswitch.conf",
    "/etc/resolv.conf", "/etc/host.conf", "/etc/localtime",
}
# The shim's own reads at start-up (raw system calls, libcshim/shim_core.c),
# not the program's: a program's own read of them is therefore not measured.
SHIM_OWN = {"/proc/self/status", "/proc/self/exe", "/proc/self/cmdline", "/proc/self/stat"}

# Why a missed path was missed, where it is known (still counted as missed).
KNOWN_MISSES = [
    (re.compile(r"^/dev/shm/sem\.[A-Za-z0-9]{6}$"), "glibc sem_open's temporary file before its link() to the name"),
    (re.compile(r"^/(usr/bin/(cc|c\+\+|gcc|g\+\+)(-[0-9]+)?|etc/alternatives/(cc|c\+\+))$"), "a readlink or stat inside glibc's realpath(3) (gcc finding its prefix)"),
]

GLIBC_INTERNAL_PREFIX = (
    "/usr/lib/locale/", "/usr/share/locale/", "/usr/lib/x86_64-linux-gnu/gconv/",
    "/usr/lib/aarch64-linux-gnu/gconv/", "/usr/share/zoneinfo/",
)

# Syscalls with a path argument: the first quoted one (or the first two, or
# for symlink the second: its first is the link's text, not a path).
PATH_CALLS = {
    "open", "openat", "openat2", "creat", "stat", "lstat", "newfstatat", "statx",
    "access", "faccessat", "faccessat2", "readlink", "readlinkat", "execve", "execveat",
    "chdir", "mkdir", "mkdirat", "unlink", "unlinkat", "rmdir", "rename", "renameat",
    "renameat2", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmodat",
    "chown", "lchown", "fchownat", "utimensat", "utimes", "truncate", "mknod",
    "mknodat", "statfs", "getxattr", "lgetxattr", "setxattr", "lsetxattr",
    "listxattr", "llistxattr", "removexattr", "inotify_add_watch", "name_to_handle_at",
}

TWO_PATHS = {"rename", "renameat", "renameat2", "link", "linkat"}

LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(.*)$")
ARG = re.compile(r'(?:(?:AT_FDCWD|-?\d+)<((?:[^>\\]|\\.)*)>,\s*)?"((?:[^"\\]|\\.)*)"')
CWD = re.compile(r"AT_FDCWD<((?:[^>\\]|\\.)*)>")


def unescape(s):
    return codecs.escape_decode(s.encode("latin-1", "backslashreplace"))[0].decode("utf-8", "surrogateescape")


def glibc_internal(p):
    return p in GLIBC_INTERNAL_EXACT or p.startswith(GLIBC_INTERNAL_PREFIX)


def strace_paths(log):
    """Successful absolute paths of the workload's processes."""
    pending, cwd, workload = {}, {}, set()
    launcher = None  # restrack itself: the log's first execve
    paths = set()
    with open(log, encoding="utf-8", errors="surrogateescape") as f:
        for raw in f:
            raw = raw.rstrip("\n")
            pid = raw.split(" ", 1)[0]
            if raw.endswith("<unfinished ...>"):
                pending[pid] = raw[: -len("<unfinished ...>")]
                continue
            m = re.match(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$", raw)
            if m:
                raw = pending.pop(m.group(1), m.group(1) + " ?(") + m.group(2)
            m = LINE.match(raw)
            if not m:
                continue
            pid, call, args, ret, tail = m.groups()
            ok = ret != "?" and int(ret) >= 0
            for c in CWD.findall(args):
                cwd[pid] = unescape(c)
            if call in ("clone", "clone3", "fork", "vfork") and ok:
                cwd[ret] = cwd.get(pid, "/")
                if pid in workload:
                    workload.add(ret)
                continue
            if call in ("execve", "execveat") and ok:
                if launcher is None:
                    launcher = pid
                    continue
                if not workload:
                    # The root's own execve is restrack's (its Go child,
                    # before any shim): the store names it as the exe.
                    workload.add(pid)
                    continue
                workload.add(pid)
            if call == "fchdir" and ok:
                d = re.match(r"-?\d+<((?:[^>\\]|\\.)*)>", args)
                if d:
                    cwd[pid] = unescape(d.group(1))
            if pid not in workload or not ok or call not in PATH_CALLS:
                continue
            found = ARG.findall(args)
            if call in ("symlink", "symlinkat"):
                found = found[1:2]  # the first is the link's text
            elif call not in TWO_PATHS:
                found = found[:1]  # the rest are argv, a readlink's result, an xattr's name
            for base, p in found:
                p = unescape(p)
                if not p:
                    continue  # AT_EMPTY_PATH: a lookup by fd
                if not p.startswith("/"):
                    p = os.path.join(unescape(base) if base else cwd.get(pid, "/"), p)
                paths.add(os.path.normpath(p))
            if call == "chdir" and found:
                cwd[pid] = os.path.normpath(os.path.join(cwd.get(pid, "/"), unescape(found[0][1])))
    return paths


def shim_paths(store):
    out = subprocess.run([RESTRACK, "events", "--store", store, "--json", "--all"],
                         check=True, capture_output=True, text=True, errors="surrogateescape").stdout
    paths = set()
    for line in out.splitlines():
        e = json.loads(line)
        if e.get("result", 0) < 0:
            continue
        for k in ("path", "path2"):
            p = e.get(k) or ""
            if p.startswith("/"):
                paths.add(os.path.normpath(p))
    return paths


C_SOURCE = '#include <stdio.h>\n#include "greet.h"\nint main(void) { puts(GREETING); return 0; }\n'
PROGRAMS = [
    ("python3 multiprocessing", ["python3", "-c", """
import multiprocessing as mp, json, tempfile, os
def work(n):
    with open(os.path.join(os.getcwd(), 'out-%d.json' % n), 'w') as f:
        json.dump({'n': n}, f)
    return n * n
if __name__ == '__main__':
    lock = mp.Lock()
    with lock:
        with mp.Pool(2) as pool:
            print(sum(pool.map(work, range(8))))
"""]),
    ("git init/add/commit/status", ["sh", "-c",
        "git init -q repo && cd repo && echo hello > a.txt && mkdir d && echo x > d/b.txt && "
        "git add . && git -c user.name=t -c user.email=t@example.com commit -qm first && "
        "echo more >> a.txt && git status --short"]),
    ("C build (cc + make)", ["sh", "-c",
        "mkdir -p c && cd c && printf '%s' \"$C_SOURCE\" > hello.c && "
        "printf '#define GREETING \"hi\"\\n' > greet.h && "
        "printf 'hello: hello.o\\n\\tcc -o hello hello.o\\nhello.o: hello.c greet.h\\n\\tcc -O1 -c hello.c\\n' > Makefile && "
        "make -s && ./hello"]),
    ("node", ["node", "-e",
        "const fs=require('fs'),os=require('os'),path=require('path');"
        "fs.writeFileSync('n.txt',os.hostname());fs.renameSync('n.txt','m.txt');"
        "console.log(fs.readFileSync(path.resolve('m.txt'),'utf8').length, require('crypto').createHash('sha1').update('x').digest('hex'))"]),
]


def main():
    if not os.access(RESTRACK, os.X_OK):
        sys.exit("coverage: build/restrack is missing: run make first")
    if not shutil.which("strace"):
        sys.exit("coverage: strace is not installed (apt-get install strace)")
    failed = False
    print(f"{'program':28} {'covered/total':>15} {'pct':>7} {'glibc-internal (left out)':>26} {'shim own':>10}")
    for name, argv in PROGRAMS:
        if not shutil.which(argv[0]):
            print(f"{name:28} skipped: {argv[0]} is not installed")
            continue
        with tempfile.TemporaryDirectory(prefix="restrack-coverage-") as tmp:
            log, store = os.path.join(tmp, "strace.log"), os.path.join(tmp, "store")
            work = os.path.join(tmp, "work")
            os.mkdir(work)
            env = dict(os.environ, C_SOURCE=C_SOURCE, HOME=tmp, GIT_CONFIG_NOSYSTEM="1")
            r = subprocess.run(["strace", "-f", "-qq", "-y", "-e", "trace=%file,%desc", "-o", log,
                                RESTRACK, "run", "--store", store, "--"] + argv,
                               cwd=work, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{name:28} FAILED (exit {r.returncode}): {r.stderr.strip()[-300:]}")
                failed = True
                continue
            seen_by_strace = strace_paths(log)
            shim = shim_paths(store)
        internal = {p for p in seen_by_strace if glibc_internal(p)}
        own = seen_by_strace & SHIM_OWN
        total = seen_by_strace - internal - own
        missed = sorted(total - shim)
        covered = len(total) - len(missed)
        pct = 100.0 * covered / len(total) if total else 0.0
        print(f"{name:28} {covered:>7}/{len(total):<7} {pct:6.1f}% {len(internal):>26} {len(own):>10}")
        for p in missed[:8]:
            why = next((w for r, w in KNOWN_MISSES if r.match(p)), "")
            print(f"    missed: {p}" + (f"  ({why})" if why else ""))
        if len(missed) > 8:
            print(f"    … and {len(missed) - 8} more")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
