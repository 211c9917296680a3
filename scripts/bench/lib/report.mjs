/**
 * The printed report: one table of figures per target, then mailfront's
 * ratios against the baselines measured in the same run, next to what
 * ANCHORS.md measured and the goal it sets. Markdown, so that a run can be
 * pasted into docs/bench.md as it is.
 */

const NAMES = { direct: 'direct Dovecot', mailfront: 'mailfront', nginx: 'nginx mail proxy', pipe: 'bare Node pipe' };
const COLUMNS = ['direct', 'mailfront', 'nginx', 'pipe'];

/** ANCHORS.md, for the column beside each figure. */
const ANCHORS = {
  cpuLoginPlain: { nginx: 0.34, pipe: 0.33 },
  cpuLoginTls: { nginx: 0.87, pipe: 1.09 },
  cpuMbPlain: { nginx: 0.53, pipe: 0.65 },
  cpuMbTls: { nginx: 1.15, pipe: 1.11 },
  fetchPlain: { direct: 1101, nginx: 866, pipe: 797 },
  idlePlain: { direct: 600, nginx: 9.5, pipe: 21 },
  idleTls: { direct: 650, nginx: 31, pipe: 30 },
  tlsP50: { direct: 2.8, nginx: 48 },
};

const MB = (bytes) => bytes / 1e6;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
}

/**
 * Every figure of the run, by target; undefined where not measured. Per-op
 * CPU is the median over the rounds (robust to a burst of load elsewhere on
 * the box); rates are totals over all rounds; latency percentiles are over
 * all C=1 samples of all rounds together.
 */
export function figures(r) {
  const f = {};
  for (const t of r.targets) {
    const x = (f[t] = {});
    for (const mode of ['plain', 'tls']) {
      const L = r.logins[mode]?.[t];
      if (L?.c64?.length) {
        const perLogin = (rounds, key) => median(rounds.map((run) => (run.cpu[key] ?? NaN) / run.ok));
        const ok = L.c64.reduce((a, run) => a + run.ok, 0);
        x[`loginsPerS_${mode}`] = (ok / L.c64.reduce((a, run) => a + run.elapsedMs, 0)) * 1000;
        if (t !== 'direct') {
          const own = perLogin(L.c64, 'proxyMs');
          const helper = L.c64[0].cpu.helperMs === undefined ? undefined : perLogin(L.c64, 'helperMs');
          x[`cpuLoginOwn_${mode}`] = own;
          x[`cpuLoginHelper_${mode}`] = helper;
          x[`cpuLogin_${mode}`] = own + (helper ?? 0);
          x[`cpuLoginWarmup_${mode}`] = L.warmup.cpu.proxyMs / L.warmup.ok + (L.warmup.cpu.helperMs ?? 0) / L.warmup.ok;
          x[`cpuLoginC1_${mode}`] = perLogin(L.c1, 'proxyMs') + (helper === undefined ? 0 : perLogin(L.c1, 'helperMs'));
        }
        x[`dovecotCpuLogin_${mode}`] = perLogin(L.c64, 'dovecotMs');
        const lat = L.c1.flatMap((run) => run.latenciesMs).sort((a, b) => a - b);
        x[`p50_${mode}`] = percentile(lat, 50);
        x[`p99_${mode}`] = percentile(lat, 99);
        x[`c1n_${mode}`] = lat.length;
        x[`errors_${mode}`] = [L.warmup, ...L.c64, ...L.c1].reduce((a, run) => a + run.errors, 0);
      }
      const F = r.fetch[mode]?.[t];
      if (F?.runs?.length) {
        x[`fetchMBs_${mode}`] = median(F.runs.map((run) => run.mbPerS));
        x[`fetchMB_${mode}`] = MB(F.runs[0].bytes);
        if (t !== 'direct') x[`cpuMb_${mode}`] = median(F.runs.map((run) => run.cpu.proxyMs / MB(run.bytes)));
        x[`dovecotCpuMb_${mode}`] = median(F.runs.map((run) => run.cpu.dovecotMs / MB(run.bytes)));
      }
      const I = r.idle[mode]?.[t];
      if (I) x[`idleKiB_${mode}`] = I.perSessionKiB;
    }
  }
  return f;
}

const num = (v, digits = 2) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(digits));

export function printReport(r) {
  const f = figures(r);
  const cols = COLUMNS.filter((c) => r.targets.includes(c));
  const get = (t, k) => f[t]?.[k];
  const out = [];
  const row = (label, cell, anchor = '') => out.push(`| ${label} | ${cols.map((t) => cell(t)).join(' | ')} | ${anchor} |`);

  out.push(`## Results ${r.startedAt.slice(0, 10)} — ${r.machine.cpus} × ${r.machine.cpuModel}, Node ${r.versions.node}, ${r.versions.dovecot ? `Dovecot ${r.versions.dovecot.split(' ')[0]}` : ''}${r.versions.nginx ? `, ${r.versions.nginx.replace('nginx version: ', '')}` : ''}, mailfront ${r.versions.mailfrontCommit}`);
  out.push('');
  const tlsInfo = Object.values(r.logins.tls).find((x) => x?.c64?.tls)?.c64.tls;
  out.push(
    `${r.counts.users} users; logins: ${r.counts.loginsC64} at C=${r.counts.concurrency} in ${r.counts.loginRounds} rounds after a warm-up round (each user once), ${r.counts.loginsC1} at C=1 (at most ${r.counts.c1MaxMs / 1000} s) in ${r.counts.loginRounds} rounds; FETCH: ${r.counts.fetchMessages} × 1 MiB, ${r.counts.fetchRuns} runs after one warm-up, median; idle: ${r.counts.idleSessions} IDLE sessions on a fresh proxy process after each user logged in once. Targets take turns within each round; CPU per operation is the median round.${tlsInfo ? ` TLS: ${tlsInfo.protocol} ${tlsInfo.cipher}${tlsInfo.group ? ` ${tlsInfo.group}` : ''}, RSA-2048 self-signed, full handshake every login.` : ''}`,
  );
  out.push('');
  out.push(`| figure | ${cols.map((c) => NAMES[c]).join(' | ')} | ANCHORS |`);
  out.push(`|---|${cols.map(() => '--:').join('|')}|---|`);
  const anchorText = (a, unit = '') => (a ? Object.entries(a).map(([k, v]) => `${k} ${v}${unit}`).join(', ') : '');

  for (const [mode, label] of [
    ['plain', 'plain'],
    ['tls', 'TLS'],
  ]) {
    if (!cols.some((t) => get(t, `loginsPerS_${mode}`) !== undefined)) continue;
    row(`IMAP logins/s, ${label}, C=64`, (t) => num(get(t, `loginsPerS_${mode}`), 0));
    row(
      `proxy CPU per ${label} login, C=64 (ms)`,
      (t) => {
        const total = get(t, `cpuLogin_${mode}`);
        const helper = get(t, `cpuLoginHelper_${mode}`);
        if (helper === undefined) return num(total, 3);
        return `${num(total, 3)} (${num(get(t, `cpuLoginOwn_${mode}`), 3)} + ${num(helper, 3)} auth_http)`;
      },
      anchorText(mode === 'plain' ? ANCHORS.cpuLoginPlain : ANCHORS.cpuLoginTls),
    );
    row(`Dovecot CPU per ${label} login, C=64 (ms, all its processes)`, (t) => num(get(t, `dovecotCpuLogin_${mode}`), 3));
    row(
      `${label} login latency, C=1, p50 / p99 (ms)`,
      (t) => (get(t, `p50_${mode}`) === undefined ? '—' : `${num(get(t, `p50_${mode}`))} / ${num(get(t, `p99_${mode}`))}`),
      mode === 'tls' ? anchorText(ANCHORS.tlsP50, ' ms p50') : '',
    );
    row(`proxy CPU per ${label} login, C=1 (ms)`, (t) => num(get(t, `cpuLoginC1_${mode}`), 3));
    row(`proxy CPU per ${label} login, warm-up round (ms)`, (t) => num(get(t, `cpuLoginWarmup_${mode}`), 3));
  }
  for (const [mode, label] of [
    ['plain', 'plain'],
    ['tls', 'TLS to client'],
  ]) {
    if (!cols.some((t) => get(t, `fetchMBs_${mode}`) !== undefined)) continue;
    const direct = get('direct', `fetchMBs_${mode}`);
    const mbs = cols.map((t) => get(t, `fetchMB_${mode}`)).find((x) => x !== undefined);
    row(
      `FETCH of ${num(mbs, 0)} MB, ${label} (MB/s)`,
      (t) => {
        const v = get(t, `fetchMBs_${mode}`);
        return v === undefined ? '—' : `${num(v, 0)}${direct && t !== 'direct' ? ` (${num(v / direct)}×)` : ''}`;
      },
      mode === 'plain' ? anchorText(ANCHORS.fetchPlain, ' MB/s') : '',
    );
    row(`proxy CPU per MB relayed, ${label} (ms)`, (t) => num(get(t, `cpuMb_${mode}`), 3), anchorText(mode === 'plain' ? ANCHORS.cpuMbPlain : ANCHORS.cpuMbTls));
    row(`Dovecot CPU per MB, ${label} (ms)`, (t) => num(get(t, `dovecotCpuMb_${mode}`), 3));
  }
  for (const [mode, label] of [
    ['plain', 'plain'],
    ['tls', 'TLS'],
  ]) {
    if (!cols.some((t) => get(t, `idleKiB_${mode}`) !== undefined)) continue;
    row(
      `memory per idle IDLE session, ${label} (KiB)`,
      (t) => {
        const v = get(t, `idleKiB_${mode}`);
        if (v === undefined) return '—';
        return t === 'direct' ? `${num(v, 0)} PSS` : t === 'nginx' ? `${num(v, 1)} (worker RSS)` : `${num(v, 1)} RSS`;
      },
      anchorText(mode === 'plain' ? ANCHORS.idlePlain : ANCHORS.idleTls, ' KiB'),
    );
  }
  const errors = cols.map((t) => (get(t, 'errors_plain') ?? 0) + (get(t, 'errors_tls') ?? 0));
  if (errors.some((e) => e > 0)) row('failed logins (all rounds)', (t) => String((get(t, 'errors_plain') ?? 0) + (get(t, 'errors_tls') ?? 0)));

  // Ratios: mailfront against the baselines of this run.
  const ratios = [];
  const mf = f.mailfront;
  const ratio = (label, a, b, anchor, goal, fmt = (v) => `${num(v)}×`) => {
    if (a === undefined || b === undefined || Number.isNaN(a / b)) return;
    ratios.push(`| ${label} | ${fmt(a / b)} | ${anchor} | ${goal} |`);
  };
  if (mf) {
    const vs = (key, label, anchors, lowerIsBetter = true) => {
      const an = anchors ?? {};
      ratio(`${label}: mailfront ÷ nginx`, mf[key], f.nginx?.[key], an.nginx ? `nginx ${an.nginx}` : '', lowerIsBetter ? '≤ 1.00× (beat nginx)' : '≥ 1.00×');
      ratio(`${label}: mailfront ÷ bare pipe`, mf[key], f.pipe?.[key], an.pipe ? `pipe ${an.pipe}` : '', 'the floor: what is above 1.00× is ours to justify');
    };
    vs('cpuLogin_plain', 'CPU per plain login (C=64)', ANCHORS.cpuLoginPlain);
    vs('cpuLogin_tls', 'CPU per TLS login (C=64)', ANCHORS.cpuLoginTls);
    vs('cpuMb_plain', 'CPU per MB, plain', ANCHORS.cpuMbPlain);
    vs('cpuMb_tls', 'CPU per MB, TLS to client', ANCHORS.cpuMbTls);
    vs('idleKiB_plain', 'memory per idle session, plain', ANCHORS.idlePlain);
    vs('idleKiB_tls', 'memory per idle session, TLS', ANCHORS.idleTls);
    for (const mode of ['plain', 'tls']) {
      const nginxRatio = f.nginx?.[`fetchMBs_${mode}`] && f.direct?.[`fetchMBs_${mode}`] ? f.nginx[`fetchMBs_${mode}`] / f.direct[`fetchMBs_${mode}`] : undefined;
      ratio(
        `FETCH MB/s ${mode === 'tls' ? 'TLS to client' : 'plain'}: mailfront ÷ direct`,
        mf[`fetchMBs_${mode}`],
        f.direct?.[`fetchMBs_${mode}`],
        mode === 'plain' ? 'nginx 0.79×, pipe 0.72×' : '',
        nginxRatio ? `≥ nginx's ${num(nginxRatio)}× in this run` : '≥ nginx (0.79× in ANCHORS)',
      );
    }
    ratio('logins/s plain C=64: mailfront ÷ direct', mf.loginsPerS_plain, f.direct?.loginsPerS_plain, '', '—');
    ratio('logins/s TLS C=64: mailfront ÷ direct', mf.loginsPerS_tls, f.direct?.loginsPerS_tls, '', '—');
    const diff = (label, key, goal, anchor) => {
      const a = mf[key];
      const b = f.direct?.[key];
      if (a === undefined || b === undefined) return;
      ratios.push(`| ${label} | ${a - b >= 0 ? '+' : ''}${num(a - b)} ms (${num(a)} vs ${num(b)}) | ${anchor} | ${goal} |`);
    };
    diff('TLS login p50 at C=1: mailfront − direct', 'p50_tls', '≤ +1 ms', 'direct 2.8, nginx 48 (Nagle)');
    diff('plain login p50 at C=1: mailfront − direct', 'p50_plain', '—', '');
    if (f.nginx) {
      const n = f.nginx.p50_tls - (f.direct?.p50_tls ?? NaN);
      if (!Number.isNaN(n)) ratios.push(`| TLS login p50 at C=1: nginx − direct (for reference) | +${num(n)} ms | +45 ms | — |`);
    }
  }
  if (ratios.length) {
    out.push('');
    out.push('| ratio (same run) | measured | ANCHORS | goal |');
    out.push('|---|--:|---|---|');
    out.push(...ratios);
  }
  if (mf?.cpuLoginWarmup_plain !== undefined) {
    out.push('');
    out.push(
      `mailfront remembers a verified password (auth success cache, by design): a repeated login skips scrypt. The bench sets auth.cacheTtlMs to 1 h so that every measured round is all cache hits (the default 60 s, not extended by hits, would expire mid-run); the warm-up round, each user's first login, is all misses: ${num(mf.cpuLoginWarmup_plain, 1)} ms CPU per plain login, nearly all scrypt. With the default TTL a user who logs in n times a minute pays that once a minute.`,
    );
  }
  const bg = Object.entries(r.background ?? {});
  if (bg.length) {
    out.push('');
    out.push(
      `Other processes on the box (not this run's) used on average ${bg.map(([k, v]) => `${num(v.otherCores)} cores during ${k}`).join(', ')}${bg.some(([, v]) => v.stealCores > 0.01) ? `; VM steal ${bg.map(([k, v]) => `${num(v.stealCores)} (${k})`).join(', ')}` : ''}. Above ~0.2 the figures are inflated by contention: rerun on a quiet machine.`,
    );
  }
  for (const n of r.notes) out.push(`\nNote: ${n}`);
  console.log(out.join('\n'));
}
