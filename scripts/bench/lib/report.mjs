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
  retrPlain: { direct: 572, nginx: 64 },
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
      loginFigures(x, t, mode, r.logins?.[mode]?.[t], '');
      loginFigures(x, t, mode, r.pop3Logins?.[mode]?.[t], 'pop3_');
      const F = r.fetch?.[mode]?.[t];
      if (F?.runs?.length) {
        x[`fetchMBs_${mode}`] = median(F.runs.map((run) => run.mbPerS));
        x[`fetchMB_${mode}`] = MB(F.runs[0].bytes);
        if (t !== 'direct') x[`cpuMb_${mode}`] = median(F.runs.map((run) => run.cpu.proxyMs / MB(run.bytes)));
        x[`dovecotCpuMb_${mode}`] = median(F.runs.map((run) => run.cpu.dovecotMs / MB(run.bytes)));
      }
      const R = r.retr?.[mode]?.[t];
      if (R?.runs?.length) {
        x[`retrMBs_${mode}`] = median(R.runs.map((run) => run.mbPerS));
        x[`retrMB_${mode}`] = MB(R.runs[0].bytes);
        x[`retrN_${mode}`] = R.runs[0].messages;
        x[`retrP50_${mode}`] = median(R.runs.map((run) => run.retrMs.p50));
        x[`retrP99_${mode}`] = median(R.runs.map((run) => run.retrMs.p99));
        if (t !== 'direct') x[`retrCpuMb_${mode}`] = median(R.runs.map((run) => run.cpu.proxyMs / MB(run.bytes)));
        x[`retrDovecotCpuMb_${mode}`] = median(R.runs.map((run) => run.cpu.dovecotMs / MB(run.bytes)));
      }
      const I = r.idle?.[mode]?.[t];
      if (I) x[`idleKiB_${mode}`] = I.perSessionKiB;
      if (I?.perSessionKiBLater !== undefined && t !== 'direct') x[`idleKiBLater_${mode}`] = I.perSessionKiBLater;
    }
    for (const [key, S] of Object.entries(r.submission ?? {})) {
      const T = S.targets?.[t];
      if (!T?.rounds?.length) continue;
      const perMsg = (k) => median(T.rounds.map((run) => (run.cpu[k] ?? NaN) / run.ok));
      const ok = T.rounds.reduce((a, run) => a + run.ok, 0);
      const lat = T.rounds.flatMap((run) => run.latenciesMs).sort((a, b) => a - b);
      const y = { label: S.label, mode: S.mode };
      y.perS = (ok / T.rounds.reduce((a, run) => a + run.elapsedMs, 0)) * 1000;
      y.p50 = percentile(lat, 50);
      y.p99 = percentile(lat, 99);
      if (t !== 'direct') {
        y.cpuOwn = perMsg('proxyMs');
        y.cpuHelper = T.rounds[0].cpu.helperMs === undefined ? undefined : perMsg('helperMs');
        y.cpu = y.cpuOwn + (y.cpuHelper ?? 0);
      }
      y.dovecotCpu = perMsg('dovecotMs');
      y.sent = ok;
      y.delivered = T.rounds.reduce((a, run) => a + (run.delivered ?? 0), 0);
      y.errors = [T.warmup, ...T.rounds].reduce((a, run) => a + run.errors, 0);
      (x.submission ??= {})[key] = y;
    }
  }
  return f;
}

/** Login figures of one protocol (prefix '' for IMAP, 'pop3_') from its warm-up, C=64 and C=1 rounds. */
function loginFigures(x, t, mode, L, prefix) {
  if (!L?.c64?.length) return;
  const perLogin = (rounds, key) => median(rounds.map((run) => (run.cpu[key] ?? NaN) / run.ok));
  const ok = L.c64.reduce((a, run) => a + run.ok, 0);
  x[`${prefix}loginsPerS_${mode}`] = (ok / L.c64.reduce((a, run) => a + run.elapsedMs, 0)) * 1000;
  if (t !== 'direct') {
    const own = perLogin(L.c64, 'proxyMs');
    const helper = L.c64[0].cpu.helperMs === undefined ? undefined : perLogin(L.c64, 'helperMs');
    x[`${prefix}cpuLoginOwn_${mode}`] = own;
    x[`${prefix}cpuLoginHelper_${mode}`] = helper;
    x[`${prefix}cpuLogin_${mode}`] = own + (helper ?? 0);
    x[`${prefix}cpuLoginWarmup_${mode}`] = L.warmup.cpu.proxyMs / L.warmup.ok + (L.warmup.cpu.helperMs ?? 0) / L.warmup.ok;
    x[`${prefix}cpuLoginC1_${mode}`] = perLogin(L.c1, 'proxyMs') + (helper === undefined ? 0 : perLogin(L.c1, 'helperMs'));
  }
  x[`${prefix}dovecotCpuLogin_${mode}`] = perLogin(L.c64, 'dovecotMs');
  const lat = L.c1.flatMap((run) => run.latenciesMs).sort((a, b) => a - b);
  x[`${prefix}p50_${mode}`] = percentile(lat, 50);
  x[`${prefix}p99_${mode}`] = percentile(lat, 99);
  x[`${prefix}c1n_${mode}`] = lat.length;
  x[`${prefix}errors_${mode}`] = [L.warmup, ...L.c64, ...L.c1].reduce((a, run) => a + run.errors, 0);
}

const num = (v, digits = 2) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(digits));

export function printReport(r) {
  const f = figures(r);
  const cols = COLUMNS.filter((c) => r.targets.includes(c));
  const get = (t, k) => f[t]?.[k];
  const out = [];
  const row = (label, cell, anchor = '') => out.push(`| ${label} | ${cols.map((t) => cell(t)).join(' | ')} | ${anchor} |`);
  const header = (title) => {
    out.push('');
    out.push(`| ${title} | ${cols.map((c) => NAMES[c]).join(' | ')} | ANCHORS |`);
    out.push(`|---|${cols.map(() => '--:').join('|')}|---|`);
  };
  const anchorText = (a, unit = '') => (a ? Object.entries(a).map(([k, v]) => `${k} ${v}${unit}`).join(', ') : '');
  const has = (key) => cols.some((t) => get(t, key) !== undefined);
  const c = r.counts;

  out.push(`## Results ${r.startedAt.slice(0, 10)} — ${r.machine.cpus} × ${r.machine.cpuModel}, Node ${r.versions.node}, ${r.versions.dovecot ? `Dovecot ${r.versions.dovecot.split(' ')[0]}` : ''}${r.versions.nginx ? `, ${r.versions.nginx.replace('nginx version: ', '')}` : ''}, mailfront ${r.versions.mailfrontCommit}`);
  out.push('');
  const tlsInfo = [...Object.values(r.logins?.tls ?? {}), ...Object.values(r.pop3Logins?.tls ?? {})].find((x) => x?.c64?.[0]?.tls)?.c64[0].tls;
  const submitText = (c.submitSizes ?? []).map((z) => `${z.count} × ${z.label}`).join(' and ');
  out.push(
    `${c.users} users; logins (IMAP, POP3): ${c.loginsC64} at C=${c.concurrency} in ${c.loginRounds} rounds after a warm-up round (each user once), ${c.loginsC1} at C=1 (at most ${c.c1MaxMs / 1000} s) in ${c.loginRounds} rounds; FETCH: ${c.fetchMessages} × 1 MiB, ${c.fetchRuns} runs after one warm-up, median; POP3 RETR: ${c.retrMessages} × 2 MiB one after another, ${c.retrRuns} runs after one warm-up, median; submission: ${submitText} at C=${c.submitConcurrency}, one session per message, in ${c.submitRounds} rounds after a warm-up; idle: ${c.idleSessions} IDLE sessions on a fresh proxy process after each user logged in once. Targets take turns within each round; CPU per operation is the median round.${tlsInfo ? ` TLS: ${tlsInfo.protocol} ${tlsInfo.cipher}${tlsInfo.group ? ` ${tlsInfo.group}` : ''}, RSA-2048 self-signed, full handshake every login.` : ''}`,
  );

  const loginRows = (prefix, proto, anchors) => {
    for (const [mode, label] of [
      ['plain', 'plain'],
      ['tls', 'TLS'],
    ]) {
      if (!has(`${prefix}loginsPerS_${mode}`)) continue;
      row(`${proto} logins/s, ${label}, C=64`, (t) => num(get(t, `${prefix}loginsPerS_${mode}`), 0));
      row(
        `proxy CPU per ${label} ${proto} login, C=64 (ms)`,
        (t) => {
          const total = get(t, `${prefix}cpuLogin_${mode}`);
          const helper = get(t, `${prefix}cpuLoginHelper_${mode}`);
          if (helper === undefined) return num(total, 3);
          return `${num(total, 3)} (${num(get(t, `${prefix}cpuLoginOwn_${mode}`), 3)} + ${num(helper, 3)} auth_http)`;
        },
        anchorText(anchors?.[mode]),
      );
      row(`Dovecot CPU per ${label} ${proto} login, C=64 (ms, all its processes)`, (t) => num(get(t, `${prefix}dovecotCpuLogin_${mode}`), 3));
      row(
        `${label} ${proto} login latency, C=1, p50 / p99 (ms)`,
        (t) => (get(t, `${prefix}p50_${mode}`) === undefined ? '—' : `${num(get(t, `${prefix}p50_${mode}`))} / ${num(get(t, `${prefix}p99_${mode}`))}`),
        anchors?.[`p50_${mode}`] ? anchorText(anchors[`p50_${mode}`], ' ms p50') : '',
      );
      row(`proxy CPU per ${label} ${proto} login, C=1 (ms)`, (t) => num(get(t, `${prefix}cpuLoginC1_${mode}`), 3));
      row(`proxy CPU per ${label} ${proto} login, warm-up round (ms)`, (t) => num(get(t, `${prefix}cpuLoginWarmup_${mode}`), 3));
    }
  };
  const errorRow = (prefix, what) => {
    const errs = (t) => (get(t, `${prefix}errors_plain`) ?? 0) + (get(t, `${prefix}errors_tls`) ?? 0);
    if (cols.some((t) => errs(t) > 0)) row(`failed ${what} (all rounds)`, (t) => String(errs(t)));
  };

  // IMAP
  if (has('loginsPerS_plain') || has('loginsPerS_tls') || has('fetchMBs_plain') || has('fetchMBs_tls') || has('idleKiB_plain') || has('idleKiB_tls')) {
    header('IMAP');
    loginRows('', 'IMAP', { plain: ANCHORS.cpuLoginPlain, tls: ANCHORS.cpuLoginTls, p50_tls: ANCHORS.tlsP50 });
    for (const [mode, label] of [
      ['plain', 'plain'],
      ['tls', 'TLS to client'],
    ]) {
      if (!has(`fetchMBs_${mode}`)) continue;
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
      if (!has(`idleKiB_${mode}`)) continue;
      row(
        `memory per idle IDLE session, ${label} (KiB)`,
        (t) => {
          const v = get(t, `idleKiB_${mode}`);
          if (v === undefined) return '—';
          return t === 'direct' ? `${num(v, 0)} PSS` : t === 'nginx' ? `${num(v, 1)} (worker RSS)` : `${num(v, 1)} RSS`;
        },
        anchorText(mode === 'plain' ? ANCHORS.idlePlain : ANCHORS.idleTls, ' KiB'),
      );
      if (has(`idleKiBLater_${mode}`)) {
        row(`  the same, both readings 20 s later (GC-dependent, ±10 KiB for Node)`, (t) => num(get(t, `idleKiBLater_${mode}`), 1));
      }
    }
    errorRow('', 'IMAP logins');
  }

  // POP3
  if (has('pop3_loginsPerS_plain') || has('pop3_loginsPerS_tls') || has('retrMBs_plain') || has('retrMBs_tls')) {
    header('POP3');
    loginRows('pop3_', 'POP3');
    for (const [mode, label] of [
      ['plain', 'plain'],
      ['tls', 'TLS to client'],
    ]) {
      if (!has(`retrMBs_${mode}`)) continue;
      const direct = get('direct', `retrMBs_${mode}`);
      const n = cols.map((t) => get(t, `retrN_${mode}`)).find((x) => x !== undefined);
      const mbs = cols.map((t) => get(t, `retrMB_${mode}`)).find((x) => x !== undefined);
      row(
        `RETR of ${n} × 2 MiB (${num(mbs, 0)} MB), ${label} (MB/s)`,
        (t) => {
          const v = get(t, `retrMBs_${mode}`);
          return v === undefined ? '—' : `${num(v, 0)}${direct && t !== 'direct' ? ` (${num(v / direct)}×)` : ''}`;
        },
        mode === 'plain' ? anchorText(ANCHORS.retrPlain, ' MB/s') : '',
      );
      row(`time per 2 MiB RETR, ${label}, p50 / p99 (ms)`, (t) => (get(t, `retrP50_${mode}`) === undefined ? '—' : `${num(get(t, `retrP50_${mode}`))} / ${num(get(t, `retrP99_${mode}`))}`));
      row(`proxy CPU per MB relayed by RETR, ${label} (ms)`, (t) => num(get(t, `retrCpuMb_${mode}`), 3));
      row(`Dovecot CPU per MB by RETR, ${label} (ms)`, (t) => num(get(t, `retrDovecotCpuMb_${mode}`), 3));
    }
    errorRow('pop3_', 'POP3 logins');
  }

  // Submission
  const subKeys = Object.keys(r.submission ?? {}).filter((k) => cols.some((t) => f[t]?.submission?.[k]));
  if (subKeys.length) {
    header('SMTP submission');
    const sub = (t, k) => f[t]?.submission?.[k];
    for (const k of subKeys) {
      const S = r.submission[k];
      const what = `${S.label}, ${S.mode === 'tls' ? 'TLS to client' : 'plain'}`;
      const direct = sub('direct', k)?.perS;
      row(`messages/s, ${what}, C=${c.submitConcurrency}`, (t) => {
        const y = sub(t, k);
        return y === undefined ? '—' : `${num(y.perS, 1)}${direct && t !== 'direct' ? ` (${num(y.perS / direct)}×)` : ''}`;
      });
      row(`time per message (connect … 250 after DATA), ${what}, p50 / p99 (ms)`, (t) => (sub(t, k) ? `${num(sub(t, k).p50)} / ${num(sub(t, k).p99)}` : '—'));
      row(`proxy CPU per message, ${what} (ms)`, (t) => {
        const y = sub(t, k);
        if (!y || y.cpu === undefined) return '—';
        return y.cpuHelper === undefined ? num(y.cpu, 3) : `${num(y.cpu, 3)} (${num(y.cpuOwn, 3)} + ${num(y.cpuHelper, 3)} auth_http)`;
      });
      row(`Dovecot CPU per message, ${what} (ms, all its processes)`, (t) => num(sub(t, k)?.dovecotCpu, 3));
      row(`relayed to the sink / accepted, ${what}`, (t) => (sub(t, k) ? `${sub(t, k).delivered} / ${sub(t, k).sent}` : '—'));
    }
    if (cols.some((t) => subKeys.some((k) => sub(t, k)?.errors))) row('failed submissions (all rounds)', (t) => String(subKeys.reduce((a, k) => a + (sub(t, k)?.errors ?? 0), 0)));
  }

  // Ratios: mailfront against the baselines of this run.
  const ratios = [];
  const mf = f.mailfront;
  const ratio = (label, a, b, anchor, goal, fmt = (v) => `${num(v)}×`) => {
    if (a === undefined || b === undefined || Number.isNaN(a / b)) return;
    ratios.push(`| ${label} | ${fmt(a / b)} | ${anchor} | ${goal} |`);
  };
  if (mf) {
    const vs = (a, b, label, anchors, lowerIsBetter = true) => {
      const an = anchors ?? {};
      ratio(`${label}: mailfront ÷ nginx`, a, b.nginx, an.nginx ? `nginx ${an.nginx}` : '', lowerIsBetter ? '≤ 1.00× (beat nginx)' : '≥ 1.00×');
      ratio(`${label}: mailfront ÷ bare pipe`, a, b.pipe, an.pipe ? `pipe ${an.pipe}` : '', 'the floor: what is above 1.00× is ours to justify');
    };
    const others = (key) => ({ nginx: f.nginx?.[key], pipe: f.pipe?.[key] });
    const vsKey = (key, label, anchors) => vs(mf[key], others(key), label, anchors);
    vsKey('cpuLogin_plain', 'CPU per plain IMAP login (C=64)', ANCHORS.cpuLoginPlain);
    vsKey('cpuLogin_tls', 'CPU per TLS IMAP login (C=64)', ANCHORS.cpuLoginTls);
    vsKey('cpuMb_plain', 'CPU per MB, IMAP FETCH, plain', ANCHORS.cpuMbPlain);
    vsKey('cpuMb_tls', 'CPU per MB, IMAP FETCH, TLS to client', ANCHORS.cpuMbTls);
    vsKey('idleKiB_plain', 'memory per idle session, plain', ANCHORS.idlePlain);
    vsKey('idleKiB_tls', 'memory per idle session, TLS', ANCHORS.idleTls);
    const throughput = (key, label, anchor, fallbackGoal) => {
      for (const mode of ['plain', 'tls']) {
        const k = `${key}_${mode}`;
        const nginxRatio = f.nginx?.[k] && f.direct?.[k] ? f.nginx[k] / f.direct[k] : undefined;
        ratio(
          `${label} ${mode === 'tls' ? 'TLS to client' : 'plain'}: mailfront ÷ direct`,
          mf[k],
          f.direct?.[k],
          mode === 'plain' ? anchor : '',
          nginxRatio ? `≥ nginx's ${num(nginxRatio)}× in this run` : fallbackGoal,
        );
      }
    };
    throughput('fetchMBs', 'FETCH MB/s', 'nginx 0.79×, pipe 0.72×', '≥ nginx (0.79× in ANCHORS)');
    ratio('IMAP logins/s plain C=64: mailfront ÷ direct', mf.loginsPerS_plain, f.direct?.loginsPerS_plain, '', '—');
    ratio('IMAP logins/s TLS C=64: mailfront ÷ direct', mf.loginsPerS_tls, f.direct?.loginsPerS_tls, '', '—');
    const diff = (label, key, goal, anchor) => {
      const a = mf[key];
      const b = f.direct?.[key];
      if (a === undefined || b === undefined) return;
      ratios.push(`| ${label} | ${a - b >= 0 ? '+' : ''}${num(a - b)} ms (${num(a)} vs ${num(b)}) | ${anchor} | ${goal} |`);
    };
    const nginxDiff = (label, key, anchor) => {
      const n = f.nginx?.[key] - (f.direct?.[key] ?? NaN);
      if (!Number.isNaN(n)) ratios.push(`| ${label} | ${n >= 0 ? '+' : ''}${num(n)} ms | ${anchor} | — |`);
    };
    diff('TLS IMAP login p50 at C=1: mailfront − direct', 'p50_tls', '≤ +1 ms', 'direct 2.8, nginx 48 (Nagle)');
    diff('plain IMAP login p50 at C=1: mailfront − direct', 'p50_plain', '—', '');
    nginxDiff('TLS IMAP login p50 at C=1: nginx − direct (for reference)', 'p50_tls', '+45 ms');

    // POP3
    vsKey('pop3_cpuLogin_plain', 'CPU per plain POP3 login (C=64)');
    vsKey('pop3_cpuLogin_tls', 'CPU per TLS POP3 login (C=64)');
    vsKey('retrCpuMb_plain', 'CPU per MB, POP3 RETR, plain');
    vsKey('retrCpuMb_tls', 'CPU per MB, POP3 RETR, TLS to client');
    throughput('retrMBs', 'POP3 RETR MB/s', 'nginx 0.11× (64 vs 572, Nagle)', '≥ nginx');
    ratio('POP3 logins/s plain C=64: mailfront ÷ direct', mf.pop3_loginsPerS_plain, f.direct?.pop3_loginsPerS_plain, '', '—');
    ratio('POP3 logins/s TLS C=64: mailfront ÷ direct', mf.pop3_loginsPerS_tls, f.direct?.pop3_loginsPerS_tls, '', '—');
    diff('TLS POP3 login p50 at C=1: mailfront − direct', 'pop3_p50_tls', '≤ +1 ms', '');
    diff('plain POP3 login p50 at C=1: mailfront − direct', 'pop3_p50_plain', '—', '');
    nginxDiff('TLS POP3 login p50 at C=1: nginx − direct (for reference)', 'pop3_p50_tls', '');

    // Submission
    for (const k of subKeys) {
      const S = r.submission[k];
      const what = `${S.label}, ${S.mode === 'tls' ? 'TLS to client' : 'plain'}`;
      const m = mf.submission?.[k];
      if (!m) continue;
      const d = f.direct?.submission?.[k];
      const n = f.nginx?.submission?.[k];
      ratio(`submission messages/s, ${what}: mailfront ÷ direct`, m.perS, d?.perS, '', n && d ? `≥ nginx's ${num(n.perS / d.perS)}× in this run` : '—');
      vs(m.cpu, { nginx: n?.cpu, pipe: f.pipe?.submission?.[k]?.cpu }, `CPU per submitted message, ${what}`);
    }
  }
  if (ratios.length) {
    out.push('');
    out.push('| ratio (same run) | measured | ANCHORS | goal |');
    out.push('|---|--:|---|---|');
    out.push(...ratios);
  }
  if (mf?.cpuLoginWarmup_plain !== undefined || mf?.pop3_cpuLoginWarmup_plain !== undefined) {
    out.push('');
    out.push(
      `mailfront remembers a verified password (auth success cache, by design): a repeated login skips scrypt. The bench sets auth.cacheTtlMs to 1 h so that every measured round is all cache hits (the default 60 s, not extended by hits, would expire mid-run); the warm-up round, each user's first login, is all misses: ${num(mf.cpuLoginWarmup_plain ?? mf.pop3_cpuLoginWarmup_plain, 1)} ms CPU per plain login, nearly all scrypt. With the default TTL a user who logs in n times a minute pays that once a minute.`,
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
