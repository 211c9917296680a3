/**
 * What the bench reads from /proc: CPU time and memory of the processes under
 * test. CPU is utime+stime in clock ticks (USER_HZ, 100 on Linux: 10 ms
 * resolution), summed over all threads of a process by the kernel; a phase
 * long enough to burn a second or more of CPU keeps that error under 1 %.
 */
import * as fs from 'node:fs';

/** USER_HZ: fixed at 100 by the Linux ABI whatever the kernel's HZ. */
const TICKS_PER_S = 100;
const MS_PER_TICK = 1000 / TICKS_PER_S;

/** Fields of /proc/<pid>/stat after "pid (comm)": comm may hold spaces and parentheses. */
function statFields(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * CPU of one process in ms: own (utime+stime, all threads) and that of its
 * reaped children (cutime+cstime). undefined once the process is gone.
 */
export function cpuOf(pid) {
  const f = statFields(pid);
  if (!f) return undefined;
  // Counting from "state" as index 0: utime 11, stime 12, cutime 13, cstime 14, ppid 1, session 3.
  return {
    own: (Number(f[11]) + Number(f[12])) * MS_PER_TICK,
    children: (Number(f[13]) + Number(f[14])) * MS_PER_TICK,
  };
}

export function procInfo(pid) {
  const f = statFields(pid);
  if (!f) return undefined;
  return { pid, state: f[0], ppid: Number(f[1]), session: Number(f[3]) };
}

function allPids() {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
}

/** Live (non-zombie) children of `ppid`. */
export function childrenOf(ppid) {
  return allPids().filter((p) => {
    const i = procInfo(p);
    return i && i.ppid === ppid && i.state !== 'Z';
  });
}

/** Live (non-zombie) members of session `sid` (Dovecot's master leads its own). */
export function sessionMembers(sid) {
  return allPids().filter((p) => {
    const i = procInfo(p);
    return i && i.session === sid && i.state !== 'Z';
  });
}

/** The executable's base name, e.g. 'imap', 'imap-login', 'nginx'. */
export function exeName(pid) {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`).split('/').pop();
  } catch {
    return undefined;
  }
}

/**
 * Total CPU in ms of a tree rooted at `root` given by `members()` (which
 * includes root): every live member's own time plus root's reaped children.
 * Children that exited and were reaped by root count through root's cutime;
 * a deeper process reaped by a live member counts through that member only
 * once it is reaped, which is close enough for trees (nginx, Dovecot) whose
 * short-lived processes are all children of the root.
 */
export function treeCpuMs(root, members) {
  let total = 0;
  for (const pid of members) {
    const c = cpuOf(pid);
    if (!c) continue;
    total += c.own;
    if (pid === root) total += c.children;
  }
  return total;
}

/**
 * CPU of one process in ms with nanosecond precision: the sum over its live
 * threads of the scheduler's run time (/proc/<pid>/task/<tid>/schedstat,
 * first field). Exact where utime+stime counts 10 ms ticks, but a thread
 * that exits takes its time with it: use it for processes whose threads live
 * as long as they do (Node's main and pool threads, nginx's worker), and
 * treeCpuMs for Dovecot's coming and going processes.
 */
export function preciseCpuMs(pid) {
  let ns = 0;
  let tasks;
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  for (const tid of tasks) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between readdir and read
    }
  }
  return ns / 1e6;
}

/**
 * The whole machine's busy CPU in ms since boot (/proc/stat: user, nice,
 * system, irq, softirq, steal), and steal alone: with our own processes
 * subtracted, what everything else on the box burnt during a measurement.
 */
export function machineCpuMs() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return { busy: (user + nice + system + irq + softirq + steal) * MS_PER_TICK, steal: steal * MS_PER_TICK };
}

/** VmRSS of a process in KiB. */
export function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Proportional set size in KiB (shared pages divided among their users): how ANCHORS counts Dovecot's process-per-session memory. */
export function pssKiB(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
