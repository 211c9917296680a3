/**
 * The processes of a daemon that leads its own session (spawned detached, its
 * children join the session), found through /proc. Members are recognised by
 * their executable as well, so that a reused PID is never killed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sleep } from './daemon';

/** How often waitSessionGone looks again, SIGKILLing what is left each time. */
const GONE_POLL_MS = 20;

/** Live (non-zombie) processes of session `sid` whose executable starts with one of `exePrefixes`, with the executable's name. */
export function sessionMembers(sid: number, exePrefixes: readonly string[]): Array<{ pid: number; name: string }> {
  const members: Array<{ pid: number; name: string }> = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp session …": comm may hold spaces and parentheses.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[3]) !== sid || rest[0] === 'Z') continue;
      const exe = fs.readlinkSync(`/proc/${entry}/exe`);
      if (exePrefixes.some((p) => exe.startsWith(p))) members.push({ pid: Number(entry), name: path.basename(exe) });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return members;
}

export function sessionPids(sid: number, exePrefixes: readonly string[]): number[] {
  return sessionMembers(sid, exePrefixes).map((m) => m.pid);
}

/** `kill(pid, sig)`, quiet if the process is gone already. */
export function signalQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export function killAll(pids: number[]): void {
  for (const pid of pids) signalQuietly(pid, 'SIGKILL');
}

/**
 * SIGKILL to the members of the session `leader` leads, and to the leader
 * itself while it runs: once reaped, its PID may belong to someone else, and
 * only the session scan (by executable) is safe.
 */
export function killSession(leader: number, leaderRunning: boolean, exePrefixes: readonly string[]): void {
  const members = sessionPids(leader, exePrefixes);
  killAll(leaderRunning ? [leader, ...members] : members);
}

/** Until nothing of session `sid` is left, SIGKILLing what is; throws naming `daemon` after `timeoutMs`. */
export async function waitSessionGone(sid: number, exePrefixes: readonly string[], daemon: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = sessionPids(sid, exePrefixes);
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${daemon} processes ${left.join(', ')} survived SIGKILL`);
    killAll(left);
    await sleep(GONE_POLL_MS);
  }
}
