"""CPU time of a group of processes, from a cgroup made for it.

getrusage(RUSAGE_CHILDREN) misses processes that are never waited for: dma's
queue runner sets SIGCHLD to SIG_IGN and forks one delivery process per
message, so the kernel reaps those without charging their time to anyone
(under strace: rt_sigaction(SIGCHLD, SIG_IGN) then a clone per message).
A cgroup counts every task that ever ran in it, however it ended, with
nanosecond resolution, and lists the processes still in it.

CpuGroup(name) makes /sys/fs/cgroup[/unified]/outbox-bench-PID-NAME on the
cgroup v2 hierarchy (cpu.stat usage_usec, always present, no controller
needed) or, without one, on a v1 cpuacct hierarchy (cpuacct.usage). A
process joins it by being started while the bench process itself is in it
(`with group.joined(): Popen(...)`: children inherit their parent's cgroup
at fork; the bench moves back out right after). close() kills what is
left and removes the directory. Nothing else on the machine is changed.
If no hierarchy is writable, CpuGroup.available is False and usage() is
NaN.
"""
import contextlib
import os
import signal
import time


def _hierarchies():
    """(mount point, 'v2'|'v1') candidates, v2 first."""
    v2, v1 = [], []
    with open("/proc/mounts") as f:
        for line in f:
            _, mnt, fstype, opts = line.split()[:4]
            if fstype == "cgroup2":
                v2.append(mnt)
            elif fstype == "cgroup" and "cpuacct" in opts.split(","):
                v1.append(mnt)
    return [(m, "v2") for m in v2] + [(m, "v1") for m in v1]


def _own_cgroup(kind, mnt):
    """This process's cgroup directory in that hierarchy."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if (kind == "v2" and ctrls == "") or \
               (kind == "v1" and "cpuacct" in ctrls.split(",")):
                return os.path.join(mnt, path.lstrip("/"))
    return mnt


class CpuGroup:
    def __init__(self, name):
        self.path = None
        for mnt, kind in _hierarchies():
            path = os.path.join(mnt, "outbox-bench-%d-%s" % (os.getpid(), name))
            try:
                os.mkdir(path)
            except OSError:
                continue
            self.path, self.kind, self.home = path, kind, _own_cgroup(kind, mnt)
            break
        self.available = self.path is not None

    def _move(self, cgdir, pid):
        with open(os.path.join(cgdir, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    @contextlib.contextmanager
    def joined(self):
        """The bench process in the group for the duration: what it starts
        meanwhile stays in it."""
        if not self.available:
            yield
            return
        self._move(self.path, os.getpid())
        try:
            yield
        finally:
            self._move(self.home, os.getpid())

    def usage(self):
        """CPU seconds (user + system) of every task that ran in the group."""
        if not self.available:
            return float("nan")
        if self.kind == "v2":
            with open(os.path.join(self.path, "cpu.stat")) as f:
                for line in f:
                    k, v = line.split()
                    if k == "usage_usec":
                        return int(v) / 1e6
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read()) / 1e9

    def procs(self):
        if not self.available:
            return []
        with open(os.path.join(self.path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]

    def close(self):
        if not self.available:
            return
        me = os.getpid()
        for _ in range(100):
            pids = [p for p in self.procs() if p != me]
            if me in self.procs():
                self._move(self.home, me)
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        try:
            os.rmdir(self.path)
        except OSError:
            time.sleep(0.5)
            try:
                os.rmdir(self.path)
            except OSError:
                pass
        self.available = False
