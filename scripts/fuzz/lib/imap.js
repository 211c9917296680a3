'use strict';
/**
 * IMAP fuzz properties: the real ImapClientSession (through imapProtocol's
 * createSession) fed nasty client bytes, LOGIN / AUTHENTICATE PLAIN round
 * trips, and the backend login machine fed arbitrary lines.
 *
 * `deps`: { imap, core } — the @mailfront/imap and @mailfront/proxy-core
 * modules (TypeScript sources under jest, dist under run.mjs).
 */
const c = require('./common');
const { fc, violated, latin1 } = c;

/** The tag an error reply may echo (replies.ts echoableTag). */
const ECHOABLE = /^[A-Za-z0-9.\-_:]{1,64}$/;
/** tag = 1*<any ASTRING-CHAR except "+"> (RFC 9051 §9): no SP, CTL, 8-bit, ( ) { % * " \ +. */
const TAG_CHARS = /^[^\x00-\x20\x7f-\xff(){%*"\\+]+$/;
/** `{n}` or `{n+}` closing a line, as the parser reads it. */
const LITERAL_AT_END = /\{(\d{1,15})(\+?)\}$/;
const BACKEND_OK = 'OK [CAPABILITY IMAP4rev1 IDLE] Logged in';

const arbLimits = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  {
    weight: 2,
    arbitrary: fc.record({
      maxLineBytes: fc.integer({ min: 8, max: 300 }),
      maxLiteralBytes: fc.integer({ min: 0, max: 300 }),
      maxCommandBytes: fc.integer({ min: 16, max: 600 }),
    }),
  },
);

// ---------------------------------------------------------------------------
// Client input

const arbTag = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9.\-_:]{1,6}$/) },
  { weight: 1, arbitrary: fc.constantFrom('a1', '*', '+', '<script>', 'x<y>', 'a"b', 'GET', 'POST', 'Host:', 'A'.repeat(65), 'a]b', 'a(b', '\xff', '', 'a\0b', '#~!') },
);
const arbName = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom('CAPABILITY', 'NOOP', 'LOGOUT', 'STARTTLS', 'ID', 'LOGIN', 'AUTHENTICATE', 'login', 'Authenticate', 'starttls', 'capability'),
  },
  { weight: 1, arbitrary: fc.constantFrom('SELECT', 'FETCH', 'ENABLE', 'COMPRESS', 'XYZZY', '/', 'HTTP/1.1', 'NOOP\0', 'LOGIN"', '') },
);
const arbAtom = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9!#$&'+,\-./:;<=>?@^_`|~\]]{1,10}$/),
  fc.constantFrom('NIL', 'nil', 'PLAIN', 'plain', 'CRAM-MD5', '=', '*'),
);
const arbQuoted = fc.oneof(
  c.arbText(0, 12).map((s) => `"${Buffer.from(s, 'utf8').toString('latin1').replace(/[\\"]/g, (x) => `\\${x}`)}"`),
  fc.constantFrom('"', '"abc', '"a\\"', '"a\\x"', '"\\', '"a\0b"', '""', '"\xff\xfe"', '"a\r"', '"a\nb"'),
);
/** A literal announcement, its line end and (some of) its data: sizes near the limits, and absurd ones. */
const arbLiteral = fc
  .tuple(
    fc.oneof(fc.nat(12), fc.constantFrom(0, 7, 8, 9, 15, 16, 17, 63, 64, 65, 299, 300, 301, 8191, 8192, 8193, 16384)),
    fc.boolean(),
    fc.uint8Array({ maxLength: 16 }),
    fc.constantFrom('full', 'full', 'full', 'short', 'long'),
  )
  .map(([n, plus, data, how]) => {
    const fill = Buffer.alloc(n, 0x61);
    Buffer.from(data).copy(fill, 0, 0, Math.min(n, data.length));
    const body = how === 'full' ? fill : how === 'short' ? fill.subarray(0, Math.floor(n / 2)) : Buffer.concat([fill, Buffer.from(data)]);
    return `{${n}${plus ? '+' : ''}}\r\n${body.toString('latin1')}`;
  });
const arbHugeLiteral = fc.constantFrom('{99999999999+}', '{99999999999}', '{18446744073709551616+}', '{9999999999999999}', '{0000000000000000001}', '{1+}', '{-1}', '{+}', '{}');
const arbList = fc
  .tuple(fc.nat(12), fc.array(fc.oneof(arbAtom, arbQuoted), { maxLength: 4 }), fc.boolean())
  .map(([depth, items, closed]) => '('.repeat(depth) + items.join(' ') + (closed ? ')'.repeat(depth) : ''));
const arbArg = fc.oneof(
  { weight: 4, arbitrary: arbAtom },
  { weight: 3, arbitrary: arbQuoted },
  { weight: 2, arbitrary: arbLiteral },
  { weight: 1, arbitrary: arbHugeLiteral },
  { weight: 2, arbitrary: arbList },
  { weight: 2, arbitrary: c.arbBase64 },
  { weight: 1, arbitrary: c.arbControl },
);
const arbEol = fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r', '', ' \r\n');
const arbCommand = fc
  .tuple(arbTag, fc.constantFrom(' ', ' ', ' ', '', '  '), arbName, fc.array(arbArg, { maxLength: 4 }), arbEol)
  .map(([tag, sp, name, args, eol]) => `${tag}${sp}${name}${args.map((a) => ` ${a}`).join('')}${eol}`);
const arbFragment = fc.oneof(
  { weight: 8, arbitrary: arbCommand.map(latin1) },
  { weight: 2, arbitrary: c.arbBytes },
  { weight: 1, arbitrary: c.arbControl.map(latin1) },
  { weight: 1, arbitrary: c.arbLongRun([8, 300, 600, 8192, 16384]).map(latin1) },
  { weight: 1, arbitrary: c.arbBase64.map((b) => latin1(`${b}\r\n`)) },
  { weight: 1, arbitrary: fc.constantFrom('*\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'a STARTTLS\r\n', 'a STARTTLS\r\nb LOGIN u p\r\n').map(latin1) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(arbTag, c.arbPlainB64, fc.constantFrom('LOGIN alice secret', 'LOGIN {5}\r\nalice "sec ret"', 'LOGIN {5+}\r\nalice {6+}\r\nsecret', 'AUTHENTICATE PLAIN', 'AUTHENTICATE PLAIN B64', 'AUTHENTICATE PLAIN\r\nB64'))
      .map(([tag, b64, cmd]) => latin1(`${tag} ${cmd.replace('B64', b64)}\r\n`)),
  },
);
const arbInput = fc.array(arbFragment, { maxLength: 12 }).map((parts) => Buffer.concat(parts));

function imapProperties(deps) {
  const { imap, core } = deps;
  const limitsOf = (l) => l ?? imap.DEFAULT_IMAP_LIMITS;

  // -------------------------------------------------------------------------
  // Reply texts

  function replySets() {
    const r = imap.imapReplies;
    const templates = [];
    for (const [key, value] of Object.entries(r)) {
      if (typeof value === 'string') templates.push(value);
      else if (key === 'greeting') for (const e of c.ENV_STATES) templates.push(value(imap.preLoginCapabilities(e)));
      else if (key === 'capability') for (const e of c.ENV_STATES) templates.push(value(c.TAG, imap.preLoginCapabilities(e)));
      else templates.push(value(c.TAG));
    }
    templates.push(`${c.TAG} ${BACKEND_OK}\r\n`);
    return c.lineSets(templates);
  }
  const sets = replySets();
  const tagOk = (tag, isError) => tag === '*' || (isError ? ECHOABLE.test(tag) : TAG_CHARS.test(tag));

  /**
   * Every LF-terminated line is answered, except where IMAP waits: an empty
   * line (ignored, as Dovecot does), a line ending in a LITERAL+ `{n+}`
   * within the limits, and the literal's data, which may hold LFs. A
   * synchronising `{n}` is answered (`+ OK` or BAD) like any line.
   */
  function checkAnswered(record) {
    let phase = 'plain';
    let literalLeft = 0;
    let midCommand = false;
    for (const ctx of record) {
      if (ctx.phase !== phase) {
        phase = ctx.phase;
        literalLeft = 0;
        midCommand = false;
      }
      const chunk = ctx.chunk;
      const take = Math.min(literalLeft, chunk.length);
      literalLeft -= take;
      const rest = chunk.subarray(take);
      const complete = chunk[chunk.length - 1] === 0x0a;
      const line = rest.toString('latin1').replace(/\r?\n$/, '');
      const marker = LITERAL_AT_END.exec(line);
      if (ctx.produced.length > 0) {
        const invited = ctx.produced.some((st) => st.do === 'send' && st.text === imap.imapReplies.literalContinue);
        literalLeft = invited && marker ? Number(marker[1]) : 0;
        midCommand = invited;
        continue;
      }
      if (!complete || literalLeft > 0) continue; // a partial line, or inside a literal's data
      if (take > 0 && rest.length === 0) continue; // the literal ended with its line's LF: the command goes on
      if (!midCommand && take === 0 && line === '') continue; // an empty line
      if (marker && marker[2] === '+') {
        literalLeft = Number(marker[1]);
        midCommand = true;
        continue;
      }
      violated('answered', `no step for the line ${JSON.stringify(rest.toString('latin1'))} (${phase})`);
    }
  }

  const client = c.clientProperties({
    create: (env, limits) => imap.imapProtocol(limitsOf(limits)).createSession(env),
    arbLimits,
    // A command (its lines and literals) in command mode; an AUTHENTICATE
    // continuation line, and a CR waiting for its LF, in 'sasl' mode. The
    // mode is the session's state (protected in TypeScript, readable here).
    bound: (l, session) => {
      const x = limitsOf(l);
      return session.state.at === 'sasl' ? x.maxLineBytes + 1 : x.maxCommandBytes;
    },
    // Both are the same BYE to the client; which limit the log names depends on
    // which one the bytes received so far crossed first.
    sameReason: (reason) => reason.replace(/^client sent (?:line|command)-too-long$/, 'client sent an overlong command'),
    arbInput,
    backendReply: [BACKEND_OK],
    replySets: () => sets,
    tagOk,
    checkAnswered,
  });

  // -------------------------------------------------------------------------
  // Login round trip: what the client sent is what the login step carries

  const atomish = fc.oneof(fc.stringMatching(/^[A-Za-z0-9!#$&'+,\-./:;<=>?@^_`|~\]]{1,16}$/), fc.constantFrom('nil', 'NIL', 'Nil', 'a]'));
  /** A LOGIN argument: the value and how it is sent. Literals may carry CR and LF; nothing carries NUL. */
  const arbLoginArg = fc.oneof(
    atomish.map((v) => ({ value: v, wire: v })),
    c.arbText(1, 24).map((v) => ({ value: v, wire: `"${Buffer.from(v, 'utf8').toString('latin1').replace(/[\\"]/g, (x) => `\\${x}`)}"` })),
    fc
      .tuple(c.arbNoNul(1, 24), fc.boolean())
      .map(([v, plus]) => {
        const bytes = Buffer.from(v, 'utf8');
        return { value: v, wire: `{${bytes.length}${plus ? '+' : ''}}\r\n${bytes.toString('latin1')}` };
      }),
  );
  const arbLogin = fc.oneof(
    fc.record({ how: fc.constant('login'), user: arbLoginArg, password: arbLoginArg }),
    fc.record({ how: fc.constantFrom('plain-ir', 'plain-continuation'), authzid: c.arbNoNul(0, 12), user: c.arbNoNul(1, 24), password: c.arbNoNul(1, 24) }),
  );
  const arbPrelude = fc.array(fc.constantFrom('p1 CAPABILITY\r\n', 'p2 NOOP\r\n', 'p3 ID NIL\r\n', 'p4 ID ("name" "fuzz")\r\n', '\r\n'), { maxLength: 3 });

  const loginRoundTrip = fc.property(
    fc.stringMatching(/^[A-Za-z0-9.\-_:]{1,12}$/),
    arbLogin,
    arbPrelude,
    fc.constantFrom('implicit', 'plain-auth', 'starttls'),
    fc.uint8Array({ maxLength: 64 }),
    c.arbCuts,
    (tag, login, prelude, listener, suffix, cuts) => {
      let command;
      let expected;
      const b64 = (x) => core.encodeSaslPlain(x.authzid, x.user, x.password);
      if (login.how === 'login') {
        command = `${tag} LOGIN ${login.user.wire} ${login.password.wire}\r\n`;
        expected = { user: login.user.value, password: login.password.value, authzid: '', mechanism: 'LOGIN' };
      } else {
        command =
          login.how === 'plain-ir' ? `${tag} AUTHENTICATE PLAIN ${b64(login)}\r\n` : `${tag} AUTHENTICATE PLAIN\r\n${b64(login)}\r\n`;
        expected = { user: login.user, password: login.password, authzid: login.authzid, mechanism: 'PLAIN' };
      }
      const session = latin1(prelude.join('') + command);
      const input = c.loginInput(listener, latin1(`s STARTTLS\r\n${tag} LOGIN early bird\r\n`), session, suffix);
      const run = c.drive(
        (env) => imap.imapProtocol().createSession(env),
        listener,
        input,
        (b) => c.chunksByFractions(b, cuts),
        [{ ok: true, backendReply: [BACKEND_OK] }],
      );
      c.checkLoginRoundTrip(run, command, expected, suffix);
      const last = run.steps[run.steps.length - 2];
      if (last.do !== 'send' || last.text !== `${tag} ${BACKEND_OK}\r\n`) violated('login round trip', `final reply ${JSON.stringify(last)}`);
    },
  );

  // -------------------------------------------------------------------------
  // Backend login machine

  const capWords = ['IMAP4rev1', 'STARTTLS', 'AUTH=PLAIN', 'SASL-IR', 'LITERAL+', 'LOGINDISABLED', 'ID', 'auth=plain'];
  const arbCaps = fc.subarray(capWords).map((w) => w.join(' '));
  const arbBackendLine = fc.oneof(
    { weight: 2, arbitrary: arbCaps.map((caps) => `* OK [CAPABILITY ${caps}] ready.`) },
    { weight: 1, arbitrary: fc.constantFrom('* OK ready.', '* PREAUTH hi', '* BYE bye', '* ok [capability imap4rev1 starttls] x', '* ID NIL', '* 1 EXISTS', '+ ', '+', '+ OK') },
    { weight: 2, arbitrary: arbCaps.map((caps) => `* CAPABILITY ${caps}`) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(fc.constantFrom('C', 'S', 'I', 'L', '*', 'x', 'l'), fc.constantFrom('OK', 'NO', 'BAD', 'ok', 'PREAUTH'), fc.constantFrom('', ' done', ' [UNAVAILABLE] later', ' [CAPABILITY IMAP4rev1] Logged in', ' [AUTHENTICATIONFAILED] no'))
        .map(([t, s, x]) => `${t} ${s}${x}`),
    },
    { weight: 2, arbitrary: c.arbLatin1Line },
  );
  /** A backend answering what the login machine sent; `choice` picks among plausible answers. */
  /** Mostly the first option (the way through), else any of them. */
  const pick = (choice, options) => (choice % 4 !== 0 ? options[0] : options[(choice >> 2) % options.length]);
  const capsFor = (choice) => capWords.filter((_, i) => (choice >> i) & 1).join(' ');
  function respond(sent, choice) {
    const caps = capsFor(choice >> 3);
    if (sent === null) return [pick(choice, [`* OK [CAPABILITY ${caps}] ready.`, `* OK [CAPABILITY ${caps}] ready.`, '* OK ready.', '* PREAUTH hi', '* BYE busy'])];
    if (sent.startsWith('C CAPABILITY')) return pick(choice, [[`* CAPABILITY ${caps}`, 'C OK done'], [`* CAPABILITY ${caps}`, 'C OK done'], ['C NO'], ['C OK']]);
    if (sent.startsWith('S STARTTLS')) return pick(choice, [['S OK go'], ['S OK go'], ['S NO'], ['* BYE no']]);
    const id = sent.includes('I ID (') ? pick(choice >> 2, [['* ID NIL', 'I OK'], ['I OK'], ['I BAD']]) : [];
    if (sent.endsWith('AUTHENTICATE PLAIN\r\n')) return [...id, ...pick(choice, [['+ '], ['+ '], ['L NO no']])];
    return [...id, ...pick(choice, [['L OK [CAPABILITY IMAP4rev1] Logged in'], ['* CAPABILITY IMAP4rev1', 'L OK done'], ['L NO [AUTHENTICATIONFAILED] no'], ['L NO [UNAVAILABLE] later'], ['L BAD what'], ['+ ']])];
  }
  const backend = c.backendProperty(core, imap.imapBackend, arbBackendLine, respond);

  return {
    ...client.properties,
    'login round trip': loginRoundTrip,
    'backend machine': backend,
  };
}

module.exports = { imapProperties };
