'use strict';
/**
 * What the fuzz properties of every protocol share: a model of the session
 * driver (proxy-core's SessionDriver without sockets), chunkings, nasty byte
 * generators, and the check that a reply is one of the session's own texts.
 *
 * Plain CommonJS on purpose: the jest suites load it with the TypeScript
 * sources of the packages, `scripts/fuzz/run.mjs` with their compiled dist,
 * so both run the very same properties. The packages come in as arguments;
 * nothing here imports the workspace.
 */
const fc = require('fast-check');

// ---------------------------------------------------------------------------
// The listener a session runs on, as SessionDriver's getters see it

/** Listener kinds: how `tls`, `starttlsAvailable` and `authAllowed` start and change. */
const LISTENERS = ['starttls', 'implicit', 'plain-auth', 'plain-noauth', 'starttls-plainauth'];

/** A SessionEnv stub with SessionDriver's live getters: STARTTLS flips `tls`. */
function makeEnv(listener) {
  const tls = listener === 'implicit' ? 'implicit' : listener.startsWith('starttls') ? 'starttls' : 'none';
  const allowPlaintextAuth = listener === 'plain-auth' || listener === 'starttls-plainauth';
  const env = {
    sessionId: 'fuzz',
    tlsActive: tls === 'implicit',
    get tls() {
      return env.tlsActive;
    },
    get starttlsAvailable() {
      return tls === 'starttls' && !env.tlsActive;
    },
    get authAllowed() {
      return env.tlsActive || allowPlaintextAuth;
    },
  };
  return env;
}

/** Every (tls, starttlsAvailable, authAllowed) a session can see, for the reply templates. */
const ENV_STATES = [
  { tls: false, starttlsAvailable: true, authAllowed: false },
  { tls: false, starttlsAvailable: true, authAllowed: true },
  { tls: false, starttlsAvailable: false, authAllowed: true },
  { tls: false, starttlsAvailable: false, authAllowed: false },
  { tls: true, starttlsAvailable: false, authAllowed: true },
];

// ---------------------------------------------------------------------------
// Driving a session

class PropertyFailure extends Error {}

/** Fail the property with a named invariant, so a counterexample says which one broke. */
function violated(invariant, detail) {
  throw new PropertyFailure(`${invariant}: ${detail}`);
}

/** Split `buf` at the sorted offsets `cuts` (out-of-range ones ignored). */
function chunksAt(buf, cuts) {
  const out = [];
  let prev = 0;
  for (const c of cuts) {
    if (c <= prev || c >= buf.length) continue;
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  if (prev < buf.length || buf.length === 0) out.push(buf.subarray(prev));
  return out;
}

/** One chunk per line: each ends just after an LF (the last may be a partial line). */
function chunksAtLf(buf) {
  const cuts = [];
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) cuts.push(i + 1);
  return chunksAt(buf, cuts);
}

/** Byte by byte: only for short inputs (each push copies what is buffered). */
function chunksOfOne(buf) {
  const out = [];
  for (let i = 0; i < buf.length; i++) out.push(buf.subarray(i, i + 1));
  return out.length ? out : [buf];
}

/** Chunk boundaries as fractions of the length, so one list fits any input. */
const arbCuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 });
function chunksByFractions(buf, fractions) {
  return chunksAt(
    buf,
    fractions.map((f) => Math.floor(f * buf.length)).sort((a, b) => a - b),
  );
}

/**
 * Run a ClientSession as SessionDriver does, over the client's bytes before
 * and after a STARTTLS:
 * - the greeting is pumped before any input;
 * - each chunk is fed, then steps are taken until the session needs input;
 * - `login` is answered at once with the next outcome of `outcomes` (the
 *   driver pauses the client meanwhile; what was already fed stays buffered);
 * - `starttls`: the rest of the plaintext is the TLS handshake to the real
 *   driver, so it is dropped; `tlsStarted()` is called and `input.tls` follows;
 * - `relay` and `close` end the run; at `relay`, what the backend would get
 *   first is takeUnconsumed() plus the bytes not yet fed.
 *
 * `observe(session, ctx)` is called after every pump: ctx has the chunk,
 * the steps that pump produced, the phase ('plain'|'tls') and whether the
 * session now waits for input.
 */
function drive(createSession, listener, input, chunker, outcomes, observe) {
  const env = makeEnv(listener);
  const session = createSession(env);
  const steps = [];
  let outcomeIndex = 0;

  const pump = () => {
    const produced = [];
    for (;;) {
      const st = session.next();
      if (st === null) return { stop: null, produced };
      steps.push(st);
      produced.push(st);
      switch (st.do) {
        case 'send':
          continue;
        case 'login': {
          const outcome = outcomes[outcomeIndex++ % Math.max(outcomes.length, 1)] ?? { ok: false, answer: 'auth-failed', kind: 'auth-failed' };
          session.loginDone(outcome);
          continue;
        }
        case 'starttls':
        case 'relay':
        case 'close':
          return { stop: st.do, produced };
        default:
          violated('no throw', `unknown step ${JSON.stringify(st)}`);
      }
    }
  };

  const greeting = pump();
  if (greeting.stop !== null) violated('greeting', `the session stopped before any input: ${greeting.stop}`);
  let phase = 'plain';
  let unconsumed = null;
  let end = 'eof';
  for (;;) {
    const bytes = phase === 'plain' ? input.plain : input.tls;
    const chunks = chunker(bytes);
    let fed = 0;
    let stop = null;
    for (const chunk of chunks) {
      if (chunk.length === 0) continue;
      session.feed(chunk);
      fed += chunk.length;
      const r = pump();
      stop = r.stop;
      if (observe) observe(session, { chunk, produced: r.produced, phase, waiting: stop === null });
      if (stop !== null) break;
    }
    if (stop === 'starttls') {
      if (phase === 'tls') violated('starttls', 'STARTTLS accepted on a connection that is already TLS');
      env.tlsActive = true;
      session.tlsStarted();
      phase = 'tls';
      // The greeting is not repeated after STARTTLS; the client speaks first.
      const r = pump();
      if (r.produced.length > 0) violated('starttls', `steps before any TLS input: ${JSON.stringify(r.produced)}`);
      continue;
    }
    if (stop === 'relay') unconsumed = Buffer.concat([session.takeUnconsumed(), bytes.subarray(fed)]);
    end = stop ?? 'eof';
    break;
  }
  return { steps, end, phase, unconsumed };
}

/** A comparable record of a run; `sameReason` maps close reasons that only differ in the log to one. */
function summary(run, sameReason = (r) => r) {
  return JSON.stringify({
    steps: run.steps.map((s) => (s.do === 'close' ? { ...s, reason: sameReason(s.reason) } : s)),
    end: run.end,
    phase: run.phase,
    unconsumed: run.unconsumed === null ? null : run.unconsumed.toString('latin1'),
  });
}

// ---------------------------------------------------------------------------
// Reply texts: every line we send must be one of ours

/** A tag placeholder that no reply text contains. */
const TAG = '\u0001TAG\u0001';

/**
 * Sort the lines of reply templates into fixed lines and tagged suffixes
 * (lines that start with TAG + ' '). A reply that has TAG anywhere else
 * would echo client bytes in the middle of a line: refused here.
 */
function lineSets(templates) {
  const fixed = new Set();
  const tagged = new Set();
  for (const t of templates) {
    if (!t.endsWith('\r\n')) throw new Error(`reply template without CRLF: ${JSON.stringify(t)}`);
    for (const line of t.slice(0, -2).split('\r\n')) {
      if (line.startsWith(`${TAG} `)) tagged.add(line.slice(TAG.length + 1));
      else if (line.includes(TAG)) throw new Error(`tag inside a reply line: ${JSON.stringify(t)}`);
      else fixed.add(line);
    }
  }
  return { fixed, tagged };
}

/** Whether `text` is CRLF-terminated lines with no CR or LF elsewhere. */
function wellFormedLines(text) {
  return /^(?:[^\r\n]*\r\n)+$/.test(text);
}

/**
 * No reflection (ALPACA): every send is made of lines of our own replies;
 * only a tag may vary, and in an error reply only an echoable one.
 * `tagOk(tag, isError)` decides; null for protocols without tags.
 */
function checkReplies(steps, sets, tagOk) {
  for (const st of steps) {
    if (st.do !== 'send') continue;
    const { text } = st;
    if (!wellFormedLines(text)) violated('no reflection', `a reply with a bare CR/LF or no line end: ${JSON.stringify(text)}`);
    if (st.error && /[<>"]/.test(text)) violated('no reflection', `an error reply with < > or ": ${JSON.stringify(text)}`);
    for (const line of text.slice(0, -2).split('\r\n')) {
      if (sets.fixed.has(line)) continue;
      const sp = line.indexOf(' ');
      if (tagOk && sp > 0 && sets.tagged.has(line.slice(sp + 1)) && tagOk(line.slice(0, sp), st.error === true)) continue;
      violated('no reflection', `a reply line that is not one of ours: ${JSON.stringify(line)} (error: ${st.error === true})`);
    }
  }
}

// ---------------------------------------------------------------------------
// Nasty bytes

const latin1 = (s) => Buffer.from(s, 'latin1');

/** Arbitrary bytes, short and long. */
const arbBytes = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }) },
).map((u) => Buffer.from(u));

/** Bytes that parsers treat specially, alone or in runs. */
const arbControl = fc.constantFrom('\r\n', '\n', '\r', '\0', ' ', '\t', '\r\r\n', '\n\r', '\x7f', '\xff', '\x80', '\xc3\xa9', '\xe2\x80\xa8');

/** A run of one byte whose length lands near a limit (`sizes`) or anywhere. */
function arbLongRun(sizes) {
  return fc
    .tuple(fc.constantFrom('a', 'x', ' ', '\0', '\xff', '=', 'A'), fc.oneof(fc.constantFrom(...sizes.flatMap((n) => [n - 2, n - 1, n, n + 1, n + 2]).filter((n) => n >= 0)), fc.nat(3000)))
    .map(([c, n]) => c.repeat(n));
}

/** Base64 of arbitrary bytes, of SASL PLAIN messages, and of near misses. */
const arbBase64 = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u).toString('base64')),
  fc
    .tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }))
    .map(([a, u, p]) => Buffer.from(`${a}\0${u}\0${p}`, 'utf8').toString('base64')),
  fc.constantFrom('=', '*', '', '====', 'AGFsaWNlAHNlY3JldA', 'AGFsaWNlAHNlY3JldA==', 'AGFsaWNlAHNlY3JldA=\r', 'AAAA', 'AA==AA=='),
);

/** Base64 of a well-formed SASL PLAIN message, and of AUTH LOGIN's user name or password. */
const arbPlainB64 = fc
  .tuple(fc.constantFrom('', 'admin'), fc.constantFrom('alice', 'bob@example.org', 'jürgen'), fc.constantFrom('secret', 'pa ss', 'p\u00e4ss'))
  .map(([a, u, p]) => Buffer.from(`${a}\0${u}\0${p}`, 'utf8').toString('base64'));
const arbWordB64 = fc.constantFrom('alice', 'secret', 'jürgen', '').map((s) => Buffer.from(s, 'utf8').toString('base64'));

/**
 * Credentials as a client may send them: any UTF-8 but NUL, CR and LF
 * (a few encodings carry those too: see each protocol).
 */
const arbText = (min = 0, max = 24) => fc.string({ unit: 'binary', minLength: min, maxLength: max }).filter((s) => !/[\0\r\n]/.test(s));

/** Credentials in an encoding that carries CR and LF (base64, literals, a whole line): anything but NUL. */
const arbNoNul = (min, max) => fc.string({ unit: 'binary', minLength: min, maxLength: max }).filter((s) => !s.includes('\0'));

/** Login outcomes the driver may report; `ok` ends the run with a relay. */
function arbOutcomes(backendReply) {
  return fc.array(
    fc.constantFrom(
      { ok: false, answer: 'auth-failed', kind: 'auth-failed' },
      { ok: false, answer: 'temporary', kind: 'remote' },
      { ok: false, answer: 'temporary', kind: 'auth-tempfail' },
      { ok: true, backendReply },
    ),
    { minLength: 1, maxLength: 4 },
  );
}

// ---------------------------------------------------------------------------
// The client-side properties, for any protocol

/**
 * The properties every protocol's client session must have. `p` describes
 * the protocol:
 *   create(env, limits)     a ClientSession (the real glue)
 *   arbLimits               its parser limits (small ones reach the edges)
 *   bound(limits, session)  most bytes its parser may hold while waiting for input
 *   arbInput                bytes before STARTTLS (and after it)
 *   backendReply            what a backend answers to a successful login
 *   replySets(limits)       { fixed, tagged } lines of its own replies
 *   tagOk                   (tag, isError) => boolean, or null without tags
 *   checkAnswered(record)   the per-protocol rule of "every line is answered"
 *   sameReason(reason)      optional: close reasons that differ only in the log
 */
function clientProperties(p) {
  const summaryOf = summary;
  const arbCase = fc.record({
    listener: fc.constantFrom(...LISTENERS),
    limits: p.arbLimits,
    plain: p.arbInput,
    tls: p.arbInput,
    outcomes: arbOutcomes(p.backendReply),
    cuts: arbCuts,
  });

  const run = (c, chunker, observe) =>
    drive((env) => p.create(env, c.limits), c.listener, { plain: c.plain, tls: c.tls }, chunker, c.outcomes, observe);

  const checks = {
    /** Arbitrary and structured bytes, in any chunks, never make the session throw. */
    'no throw': (c) => {
      run(c, (b) => chunksByFractions(b, c.cuts));
      run(c, (b) => [b]);
    },
    /** The steps (and the bytes left for the backend) are the same whatever the chunk boundaries. */
    chunking: (c) => {
      const summary = (r) => summaryOf(r, p.sameReason);
      const whole = summary(run(c, (b) => [b]));
      const cut = summary(run(c, (b) => chunksByFractions(b, c.cuts)));
      if (cut !== whole) violated('chunking', `cut at ${JSON.stringify(c.cuts)}:\n  whole: ${whole}\n  cut:   ${cut}`);
      const lines = summary(run(c, chunksAtLf));
      if (lines !== whole) violated('chunking', `one chunk per line:\n  whole: ${whole}\n  lines: ${lines}`);
      if (c.plain.length + c.tls.length <= 512) {
        const bytes = summary(run(c, chunksOfOne));
        if (bytes !== whole) violated('chunking', `byte by byte:\n  whole: ${whole}\n  bytes: ${bytes}`);
      }
    },
    /** While the session waits for input, its parser holds no more than its limits allow. */
    'bounded memory': (c) => {
      const observe = (s, ctx) => {
        const bound = p.bound(c.limits, s);
        if (ctx.waiting && s.buffered > bound) {
          violated('bounded memory', `${s.buffered} bytes held after a chunk of ${ctx.chunk.length}; limits ${JSON.stringify(c.limits)} allow ${bound}`);
        }
      };
      run(c, (b) => chunksByFractions(b, c.cuts), observe);
      run(c, (b) => [b], observe);
    },
    /** Every complete line gets a step (reply, login, starttls, close) unless the protocol legitimately waits. */
    answered: (c) => {
      const record = [];
      run(c, chunksAtLf, (_s, ctx) => record.push(ctx));
      p.checkAnswered(record, c);
    },
    /** Every reply line is one of ours; only a tag varies, and in errors only an echoable one. */
    'no reflection': (c) => {
      const r = run(c, (b) => chunksByFractions(b, c.cuts));
      checkReplies(r.steps, p.replySets(c), p.tagOk);
    },
  };

  /**
   * All of them on one input, sharing runs (whole, cut, one line per chunk,
   * byte by byte when short): what the long run uses, at a third of the cost.
   */
  const all = (c) => {
    const observe = (s, ctx) => {
      const bound = p.bound(c.limits, s);
      if (ctx.waiting && s.buffered > bound) violated('bounded memory', `${s.buffered} bytes held after a chunk of ${ctx.chunk.length}; limits allow ${bound}`);
    };
    const summary = (r) => summaryOf(r, p.sameReason);
    const whole = run(c, (b) => [b], observe);
    const cut = run(c, (b) => chunksByFractions(b, c.cuts), observe);
    const record = [];
    const lines = run(c, chunksAtLf, (s, ctx) => {
      observe(s, ctx);
      record.push(ctx);
    });
    const w = summary(whole);
    if (summary(cut) !== w) violated('chunking', `cut at ${JSON.stringify(c.cuts)}:\n  whole: ${w}\n  cut:   ${summary(cut)}`);
    if (summary(lines) !== w) violated('chunking', `one chunk per line:\n  whole: ${w}\n  lines: ${summary(lines)}`);
    if (c.plain.length + c.tls.length <= 512) {
      const bytes = summary(run(c, chunksOfOne));
      if (bytes !== w) violated('chunking', `byte by byte:\n  whole: ${w}\n  bytes: ${bytes}`);
    }
    p.checkAnswered(record, c);
    checkReplies(cut.steps, p.replySets(c), p.tagOk);
  };

  const properties = {};
  for (const [name, check] of Object.entries(checks)) properties[name] = fc.property(arbCase, (c) => check(c));
  properties.all = fc.property(arbCase, all);
  return { properties, arbCase, run };
}

// ---------------------------------------------------------------------------
// Backend login machines

/** A hex marker that no protocol text contains, to find a secret in what is sent. */
const arbMarker = fc.stringMatching(/^[0-9a-f]{16}$/);

/**
 * A backend login context: our user and password (the password starts with a
 * marker, so any raw form of it is found in what is sent), a backend row
 * (TLS mode, passthrough or master), maybe forwarding info.
 */
const arbBackendCtx = fc
  .record({
    user: arbText(1, 12),
    marker: arbMarker,
    passwordTail: arbText(0, 8),
    tls: fc.constantFrom('none', 'starttls', 'implicit'),
    login: fc.constantFrom('passthrough', 'master'),
    masterUser: fc.constantFrom(null, 'master', 'm'),
    masterMarker: fc.option(arbMarker, { nil: null }),
    trusted: fc.boolean(),
    forward: fc.option(
      fc.record({
        clientAddress: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constant('fe80::1%eth0')),
        clientPort: fc.integer({ min: 0, max: 65535 }),
        localAddress: fc.oneof(fc.ipV4(), fc.ipV6()),
        localPort: fc.integer({ min: 0, max: 65535 }),
        sessionId: fc.stringMatching(/^[A-Za-z0-9+/]{1,16}$/),
        ttl: fc.integer({ min: 0, max: 10 }),
      }),
      { nil: null },
    ),
    helo: fc.oneof(fc.constantFrom('client.example.net', '[192.0.2.1]', ''), fc.string({ unit: 'binary-ascii', maxLength: 20 })),
    proto: fc.constantFrom('ESMTP', 'SMTP'),
  })
  .map((r) => ({
    user: r.user,
    password: `pw${r.marker}${r.passwordTail}`,
    backend: {
      name: 'b1',
      host: '127.0.0.1',
      ports: { imap: 143, pop3: 110, submission: 587 },
      tls: r.tls,
      caFile: null,
      insecure: false,
      trusted: r.trusted,
      login: r.login,
      masterUser: r.masterUser,
      masterPassword: r.masterMarker === null ? null : `mp${r.masterMarker}`,
      state: 'active',
      createdAt: '',
    },
    forward: r.forward,
    tls: r.tls === 'implicit',
    clientContext: { helo: r.helo, proto: r.proto },
  }));

/**
 * Feed a backend login machine lines as loginToBackend does, stopping at
 * `fail` or `done`; a `startTls` step makes the context TLS, as the driver
 * does once the handshake is over. Checks every step:
 * - onLine never throws, and returns exactly one of next / done / fail;
 * - a fail carries nothing to send (the driver then destroys the socket, so
 *   nothing reaches the backend after it);
 * - STARTTLS only on a backend configured for it and not yet TLS;
 * - no credentials (password, master password, their PLAIN payloads) before
 *   TLS to a backend configured for STARTTLS;
 * - in master mode the user's own password is never sent.
 */
function backendProperty(core, backend, arbLine, respond) {
  /**
   * Lines to feed: arbitrary ones, or a backend that answers what the
   * machine sent (`respond(sent, choice, junk)`: null for the greeting), one
   * of several plausible answers or a junk line per choice, so the machine is
   * driven deep into its states and off its path at any point.
   */
  const arbFeed = fc.oneof(
    fc.array(arbLine, { maxLength: 24 }).map((lines) => ({ lines })),
    fc.record({ choices: fc.array(fc.nat(), { minLength: 1, maxLength: 12 }), junk: fc.array(arbLine, { minLength: 1, maxLength: 4 }) }),
  );
  return fc.property(arbBackendCtx, arbFeed, (ctx0, feed) => {
    const ctx = { ...ctx0, backend: { ...ctx0.backend }, clientContext: { ...ctx0.clientContext } };
    const b = ctx.backend;
    const userSecrets = [ctx.password.slice(0, 18), core.encodeSaslPlain('', ctx.user, ctx.password)];
    const masterSecrets = b.masterPassword ? [b.masterPassword, core.encodeSaslPlain(ctx.user, b.masterUser ?? '', b.masterPassword)] : [];
    const secrets = b.login === 'master' ? [...userSecrets, ...masterSecrets] : userSecrets;
    let s = backend.initial(ctx);
    const queue = feed.lines ? [...feed.lines] : [];
    let turn = 0;
    const answer = (sent) => {
      if (feed.lines || turn >= feed.choices.length) return;
      const choice = feed.choices[turn++];
      // One answer in eight is a junk line.
      queue.push(...(choice % 8 === 7 ? [feed.junk[choice % feed.junk.length]] : respond(sent, choice >> 3)));
    };
    answer(null);
    while (queue.length > 0) {
      const line = queue.shift();
      const st = backend.onLine(s, line, ctx);
      const kinds = ['next', 'done', 'fail'].filter((k) => k in st);
      if (kinds.length !== 1) violated('backend step', `not exactly one of next/done/fail: ${JSON.stringify(st)}`);
      if ('fail' in st) {
        if ('send' in st || 'startTls' in st) violated('backend fail', `a fail that sends: ${JSON.stringify(st)}`);
        if (!(st.fail instanceof core.ProxyFailure)) violated('backend fail', `not a ProxyFailure: ${String(st.fail)}`);
        return;
      }
      if ('done' in st) {
        if (!Array.isArray(st.reply) || st.reply.some((l) => typeof l !== 'string')) violated('backend done', `reply ${JSON.stringify(st.reply)}`);
        return;
      }
      if (st.startTls) {
        if (b.tls !== 'starttls' || ctx.tls) violated('backend starttls', `STARTTLS with backend tls=${b.tls}, connection tls=${ctx.tls}`);
        // What a startTls step sends goes through TLS (loginToBackend writes it after the handshake).
        ctx.tls = true;
      }
      if (st.send !== undefined) {
        if (typeof st.send !== 'string' || !st.send.endsWith('\r\n')) violated('backend send', `not CRLF-terminated text: ${JSON.stringify(st.send)}`);
        const leaked = secrets.find((x) => st.send.includes(x));
        if (leaked !== undefined && b.tls === 'starttls' && !ctx.tls) violated('credentials before TLS', `sent ${JSON.stringify(st.send)} in plaintext`);
        if (b.login === 'master' && userSecrets.some((x) => st.send.includes(x))) violated('master login', `the user's password was sent: ${JSON.stringify(st.send)}`);
        answer(st.send);
      }
      s = st.next;
    }
  });
}

/** Backend lines: latin1 strings, as LineReader hands them out. */
const arbLatin1Line = fc.oneof(
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.uint8Array({ maxLength: 60 }).map((u) => Buffer.from(u).toString('latin1').replace(/\n/g, '')),
);

// ---------------------------------------------------------------------------
// Shared by the protocols' properties

/** For protocols that never wait in mid-line (POP3, SMTP): every LF-terminated line gets a step. */
function checkEveryLineAnswered(record) {
  for (const ctx of record) {
    if (ctx.chunk[ctx.chunk.length - 1] === 0x0a && ctx.produced.length === 0) {
      violated('answered', `no step for the line ${JSON.stringify(ctx.chunk.toString('latin1'))} (${ctx.phase})`);
    }
  }
}

/**
 * A login round trip's input on `listener`: the session and what follows
 * it; on STARTTLS these come inside TLS, after `early`, which the session
 * must forget with the plaintext.
 */
function loginInput(listener, early, session, suffix) {
  return listener === 'starttls'
    ? { plain: early, tls: Buffer.concat([session, suffix]) }
    : { plain: Buffer.concat([session, suffix]), tls: Buffer.alloc(0) };
}

/**
 * What every login round trip asserts: one login step, carrying `expected`
 * credentials; the run ends in relay; the backend gets exactly `suffix`,
 * what followed the login. Returns the login step for the protocol's own checks.
 */
function checkLoginRoundTrip(run, command, expected, suffix) {
  const logins = run.steps.filter((s) => s.do === 'login');
  if (logins.length !== 1) violated('login round trip', `${logins.length} login steps for ${JSON.stringify(command)}: ${JSON.stringify(run.steps)}`);
  const got = logins[0].credentials;
  const norm = (x) => JSON.stringify({ user: x.user, password: x.password, authzid: x.authzid, mechanism: x.mechanism });
  if (norm(got) !== norm(expected)) violated('login round trip', `sent ${norm(expected)}, login step carries ${norm(got)}`);
  if (run.end !== 'relay') violated('login round trip', `ended with ${run.end}, not relay`);
  if (!run.unconsumed.equals(Buffer.from(suffix))) {
    violated('login round trip', `the backend would get ${JSON.stringify(run.unconsumed.toString('latin1'))}, not what followed the login`);
  }
  return logins[0];
}

module.exports = {
  fc,
  LISTENERS,
  ENV_STATES,
  TAG,
  PropertyFailure,
  violated,
  makeEnv,
  drive,
  summary,
  chunksAt,
  chunksAtLf,
  chunksOfOne,
  chunksByFractions,
  arbCuts,
  lineSets,
  wellFormedLines,
  checkReplies,
  latin1,
  arbBytes,
  arbControl,
  arbLongRun,
  arbBase64,
  arbPlainB64,
  arbWordB64,
  arbText,
  arbNoNul,
  arbOutcomes,
  clientProperties,
  arbBackendCtx,
  backendProperty,
  arbLatin1Line,
  checkEveryLineAnswered,
  loginInput,
  checkLoginRoundTrip,
};
