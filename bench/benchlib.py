"""Helpers shared by the benchmark drivers (run_runtime_bench.py,
run_phoenix_bench.py): running a command while sampling its memory, the
pcache geometry for a target size, Linux swap in a memory cgroup (with a zram
device set up and torn down on demand), the per-miss rounds (raw
userfaultfd round trip against misses timed under `remora run`), and
rewriting a generated section of docs/benchmarks.md.
"""
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = 4096


def rss_kb(pid, fields=("RssAnon:",)):
    """RssAnon of a running process, or 0: the memory that runs through the
    pcache under Remora (program text and libraries stay local). Sampled;
    wait4's ru_maxrss would also include the high-water mark a child inherits
    from its parent through exec."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(fields):
                    total += int(line.split()[1])
    except OSError:
        pass
    return total


def mapped_file_kb(pid, under):
    """KiB of the private file mappings of files below `under` (a program's
    inputs mapped MAP_PRIVATE: the shim turns them into anonymous memory, so
    under Remora they are part of the working set), not counting their pages
    already copied on write (those are in RssAnon). Their size, not their
    resident part: the programs read all of their input, and a short run
    would end between two samples of a growing resident size."""
    total = 0
    inside = False
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split()
                if not head:
                    continue
                if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                    inside = len(head) >= 6 and head[5].startswith(under) and head[1][3] == "p"
                elif inside and head[0] == "Size:":
                    total += int(head[1])
                elif inside and head[0] == "Anonymous:":
                    total -= int(head[1])
    except OSError:
        pass
    return total


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError):
        return None


class Ran:
    """One finished command: stdout, stderr, exit code, wall and CPU seconds
    (user + system of the process and every descendant it waited for), its
    sampled peak anonymous RSS in KiB, and, if asked for, the peak of its
    private input file mappings (inputs_kb) and the peak RssAnon of the
    program `remora run` started (program_kb). timed_out: killed after the
    timeout (only when the caller did not ask for check)."""

    def __init__(self, out, err, rc, wall, cpu, rss, rss_file, inputs_kb=0, program_kb=0):
        self.out, self.err, self.rc, self.wall, self.cpu, self.rss = out, err, rc, wall, cpu, rss
        self.rss_file, self.inputs_kb, self.program_kb = rss_file, inputs_kb, program_kb
        self.timed_out = False


def run(argv, timeout=900, check=True, preexec=None, inputs_under=None, launcher_exe=None):
    """Runs argv to completion, sampling its memory every few ms.
    inputs_under: also sample its private mappings of files below this
    directory (every 5 ms: smaps is slower to read). launcher_exe: argv
    starts `remora run` (this binary), possibly behind taskset: also sample
    the RssAnon of the launcher's child that is not this binary (the program
    it paged)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=out, stderr=err, cwd=tempfile.gettempdir(),
                             preexec_fn=preexec)
        rss = rss_file = inputs = program = 0
        last_smaps = 0.0
        program_pid = None
        timed_out = False
        while True:
            rss = max(rss, rss_kb(p.pid))
            rss_file = max(rss_file, rss_kb(p.pid, ("RssFile:", "RssShmem:")))
            now = time.monotonic()
            if inputs_under and now - last_smaps > 0.005:
                inputs = max(inputs, rss_kb(p.pid) + mapped_file_kb(p.pid, inputs_under))
                last_smaps = now
            if launcher_exe:
                if program_pid is None:
                    for c in children(p.pid):
                        try:
                            if os.readlink(f"/proc/{c}/exe") != launcher_exe:
                                program_pid = c
                        except OSError:
                            pass
                if program_pid is not None:
                    program = max(program, rss_kb(program_pid))
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            if now - t0 > timeout:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                if check:
                    raise SystemExit(f"timed out after {timeout} s: {' '.join(argv)}")
                timed_out = True
                break
            time.sleep(0.002)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        r = Ran(out.read(), err.read(), p.returncode, wall, ru.ru_utime + ru.ru_stime, rss, rss_file,
                inputs, program)
        r.timed_out = timed_out
    if check and r.rc != 0:
        raise SystemExit(f"failed ({r.rc}): {' '.join(argv)}\n{r.err.decode(errors='replace')[-3000:]}")
    return r


def geometry(target_bytes, round_up):
    """The valid pcache (sets a power of two, 8..32 ways) closest to
    target_bytes from below (or above if round_up)."""
    best = None
    for ways in range(8, 33):
        set_bytes = ways * PAGE
        sets = 1
        while sets * 2 * set_bytes <= target_bytes:
            sets *= 2
        for s in (sets, sets * 2):
            cap = s * set_bytes
            ok = cap >= target_bytes if round_up else cap <= target_bytes
            if not ok:
                continue
            if best is None or abs(cap - target_bytes) < abs(best[0] - target_bytes):
                best = (cap, ways)
    return best


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def load_average():
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return ["?"] * 3


def head_commit():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def pin_prefix(pin):
    """The command prefix that keeps everything on CPU 0 (pin "same")."""
    return [shutil.which("taskset"), "-c", "0"] if pin == "same" else []


class SwapCgroup:
    """Runs a command natively in a memory cgroup whose limit stands for the
    pcache: Linux swap's answer to the same amount of local memory. Needs
    root and the memory controller (cgroup v1 or v2). With no active swap
    device and make_zram, sets up /dev/zram0 as swap (and tears it down in
    close()). Returns the run whatever its exit status (the kernel may
    OOM-kill it).
    """

    def __init__(self, make_zram=False, zram_size="4G"):
        if os.geteuid() != 0:
            raise SystemExit("Linux swap runs need root (they create a memory cgroup)")
        self.made_zram = False
        swaps = open("/proc/swaps").read().splitlines()[1:]
        if not swaps and make_zram:
            self._zram_on(zram_size)
            swaps = open("/proc/swaps").read().splitlines()[1:]
        if not swaps:
            raise SystemExit("Linux swap runs need an active swap device, e.g. zram: "
                             "echo 4G > /sys/block/zram0/disksize && mkswap /dev/zram0 && "
                             "swapon /dev/zram0")
        self.device = swaps[0].split()[0]
        name = f"remora-bench-{os.getpid()}"
        v1 = "/sys/fs/cgroup/memory"
        v2 = "/sys/fs/cgroup"
        if os.path.isfile(os.path.join(v1, "memory.limit_in_bytes")):
            self.dir, self.limit_file = os.path.join(v1, name), "memory.limit_in_bytes"
        elif "memory" in open(os.path.join(v2, "cgroup.controllers")).read().split():
            self.dir, self.limit_file = os.path.join(v2, name), "memory.max"
        else:
            self.close()
            raise SystemExit("Linux swap runs need the memory cgroup controller")
        os.mkdir(self.dir)

    def _zram_on(self, size):
        if not os.path.isdir("/sys/block/zram0"):
            subprocess.run(["modprobe", "zram"], check=False)
        if not os.path.isdir("/sys/block/zram0"):
            raise SystemExit("no /sys/block/zram0 for a swap device")
        with open("/sys/block/zram0/disksize") as f:
            if f.read().strip() != "0":
                raise SystemExit("/dev/zram0 is in use already (disksize set) but is not swap")
        with open("/sys/block/zram0/disksize", "w") as f:
            f.write(size)
        subprocess.run(["mkswap", "/dev/zram0"], check=True, capture_output=True)
        subprocess.run(["swapon", "/dev/zram0"], check=True)
        self.made_zram = True

    def run(self, argv, limit, **kw):
        with open(os.path.join(self.dir, self.limit_file), "w") as f:
            f.write(str(int(limit)))
        procs = os.path.join(self.dir, "cgroup.procs")

        def enter():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        return run(argv, check=False, preexec=enter, **kw)

    def close(self):
        try:
            os.rmdir(self.dir)
        except (OSError, AttributeError):
            pass
        if self.made_zram:
            subprocess.run(["swapoff", "/dev/zram0"], check=False)
            try:
                with open("/sys/block/zram0/reset", "w") as f:
                    f.write("1")
            except OSError:
                pass
            self.made_zram = False


def remora_run_argv(prefix, remora, pcache, ways, victim, argv, stats, extra=()):
    return prefix + [remora, "run", "--pcache", str(pcache), "--ways", str(ways), "--victim",
                     str(victim), "--quiet", "--stats-json", stats] + list(extra) + ["--"] + argv


def agg(samples):
    """The median over rounds of each percentile."""
    return {q: median([s[q] for s in samples]) for q in ("p50", "p90", "p99", "mean")}


def miss_rounds(remora, uffd, miss, rounds, pin, pcache_mb, tmp, victim=32, log=print):
    """The per-miss rounds: in each, bench/uffd_roundtrip (raw userfaultfd
    round trip) and bench/miss_bench under `remora run` (embedded default,
    a pcache of pcache_mb), interleaved so that a change of load on the
    machine hits both sides alike. Ratios are of the per-round medians'
    median: the remote-fill baseline is a UFFDIO_COPY served by another
    process, the zero-fill one the cheaper of UFFDIO_COPY and
    UFFDIO_ZEROPAGE from another process."""
    prefix = pin_prefix(pin)
    lines = pcache_mb * (1 << 20) // PAGE
    raw, rt, svc, failures = {}, {}, [], 0
    for r in range(rounds):
        r_raw = run(prefix + [uffd, "--json", "--rounds", "1", "--pages", "4096"] +
                    (["--pin", "same"] if pin == "same" else []))
        for k, v in json.loads(r_raw.out)["cases"].items():
            raw.setdefault(k, []).append(v)
        stats = os.path.join(tmp, f"miss-{pin}-{r}.json")
        for attempt in range(3):
            r_miss = run(remora_run_argv(prefix, remora, pcache_mb * (1 << 20), 8, victim,
                                         [miss, str(lines), "--json"], stats), check=False)
            if r_miss.rc == 0:
                break
            failures += 1
            log(f"  miss_bench under remora run: exit {r_miss.rc} (retrying)")
        else:
            raise SystemExit("miss_bench failed three times in a row")
        for k, v in json.loads(r_miss.out)["phases"].items():
            rt.setdefault(k, []).append(v)
        h = json.load(open(stats)).get("histograms", {}).get("pgfault_service_ns")
        if h:
            svc.append(h)
        log(f"  round {r + 1}: raw copy_process p50 {raw['copy_process'][-1]['p50']} ns, "
            f"remote_fill_clean p50 {rt['remote_fill_clean'][-1]['p50']} ns, "
            f"zero_fill p50 {rt['zero_fill'][-1]['p50']} ns")
    m = {"raw": {k: agg(v) for k, v in raw.items()}, "remora": {k: agg(v) for k, v in rt.items()},
         "pcache_mb": pcache_mb}
    if failures:
        m["failures"] = failures
    if svc:
        m["manager_service"] = agg(svc)
    base_copy = m["raw"]["copy_process"]["p50"]
    base_zero = min(m["raw"]["zero_process"]["p50"], base_copy)
    m["ratio"] = {
        "remote_fill_clean": m["remora"]["remote_fill_clean"]["p50"] / base_copy,
        "remote_fill_dirty": m["remora"]["remote_fill_dirty"]["p50"] / base_copy,
        "zero_fill": m["remora"]["zero_fill"]["p50"] / base_zero,
        "zero_fill_evicting": m["remora"]["zero_fill_evicting"]["p50"] / base_zero,
    }
    m["baseline"] = {"remote": base_copy, "zero": base_zero}
    return m


def write_section(path, begin, end, section, title):
    """Replaces the text between the markers begin and end in path (keeping
    the rest of the file); appends a new section `title` if they are absent."""
    text = open(path).read()
    if begin in text and end in text:
        a = text.index(begin)
        b = text.index(end) + len(end)
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip("\n") + f"\n\n## {title}\n\n" + section + "\n"
    open(path, "w").write(text)
