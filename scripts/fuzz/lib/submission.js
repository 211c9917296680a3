'use strict';
/**
 * Submission (SMTP) fuzz properties: the real SubmissionClientSession fed
 * nasty client bytes, AUTH PLAIN and AUTH LOGIN round trips, and the backend
 * login machine fed arbitrary lines.
 *
 * `deps`: { submission, core } — @mailfront/submission and @mailfront/proxy-core.
 */
const c = require('./common');
const { fc, violated, latin1 } = c;

const HOST = 'mx.example.org';
const EXTENSIONS = ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SIZE'];
const MAX_MESSAGE_BYTES = 10485760;

const arbLimits = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.record({ maxCommandLineBytes: fc.integer({ min: 8, max: 300 }), maxAuthLineBytes: fc.integer({ min: 8, max: 600 }) }) },
);

const arbVerb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('EHLO', 'HELO', 'STARTTLS', 'AUTH', 'RSET', 'NOOP', 'QUIT', 'HELP', 'ehlo', 'auth', 'StartTLS') },
  { weight: 1, arbitrary: fc.constantFrom('MAIL', 'RCPT', 'DATA', 'BDAT', 'VRFY', 'EXPN', 'XCLIENT', 'GET', 'POST', 'HTTP/1.1', 'AUTH\0', 'EHLO:', '', 'A'.repeat(17)) },
);
const arbArg = fc.oneof(
  c.arbText(0, 16),
  c.arbBase64,
  fc.constantFrom('client.example.net', '[192.0.2.1]', '<script>', 'a b', 'FROM:<a@b>', 'TO:<x>', '\xff\xfe', 'PLAIN', 'LOGIN', 'plain =', 'PLAIN *', 'LOGIN =', 'CRAM-MD5', 'PLAIN a b', ' '),
  c.arbBase64.map((b) => `PLAIN ${b}`),
  c.arbBase64.map((b) => `LOGIN ${b}`),
  fc.uint8Array({ maxLength: 24 }).map((u) => Buffer.from(u).toString('latin1')),
);
const arbEol = fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r', '', ' \r\n');
const arbCommand = fc
  .tuple(arbVerb, fc.constantFrom(' ', ' ', '', '  '), fc.option(arbArg, { nil: '' }), arbEol)
  .map(([v, sp, a, eol]) => `${v}${a === '' ? '' : sp + a}${eol}`);
const arbFragment = fc.oneof(
  { weight: 8, arbitrary: arbCommand.map(latin1) },
  { weight: 2, arbitrary: c.arbBytes },
  { weight: 1, arbitrary: c.arbControl.map(latin1) },
  { weight: 1, arbitrary: c.arbLongRun([6, 8, 300, 510, 512, 600, 12286, 12288]).map(latin1) },
  { weight: 2, arbitrary: c.arbBase64.map((b) => latin1(`${b}\r\n`)) },
  { weight: 1, arbitrary: fc.constantFrom('*\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'EHLO x\r\n', 'STARTTLS\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n').map(latin1) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom('EHLO client.example\r\n', 'HELO x\r\n', ''), c.arbPlainB64, c.arbWordB64, c.arbWordB64, fc.constantFrom('AUTH PLAIN <B64>', 'AUTH PLAIN\r\n<B64>', 'AUTH LOGIN <U>\r\n<P>', 'AUTH LOGIN\r\n<U>\r\n<P>', 'AUTH LOGIN\r\n*', 'AUTH PLAIN ='))
      .map(([ehlo, b64, u, p, cmd]) => latin1(`${ehlo}${cmd.replace('<B64>', b64).replace('<U>', u).replace('<P>', p)}\r\n`)),
  },
);
const arbInput = fc.array(arbFragment, { maxLength: 12 }).map((parts) => Buffer.concat(parts));

function submissionProperties(deps) {
  const { submission, core } = deps;
  const policy = { extensions: EXTENSIONS, maxMessageBytes: MAX_MESSAGE_BYTES };
  const descriptor = (limits) => submission.submissionProtocol({ hostname: HOST, extensions: EXTENSIONS, maxMessageBytes: MAX_MESSAGE_BYTES, ...(limits ?? {}) });
  const limitsOf = (l) => l ?? submission.DEFAULT_SUBMISSION_LIMITS;

  function replySets() {
    const r = submission.submissionReplies;
    const templates = [];
    for (const [key, value] of Object.entries(r)) {
      if (typeof value === 'string') templates.push(value);
      else if (key === 'ehlo') for (const e of c.ENV_STATES) templates.push(value(HOST, submission.ehloKeywords(policy, e)));
      else templates.push(value(HOST));
    }
    return c.lineSets(templates);
  }
  const sets = replySets();

  const client = c.clientProperties({
    create: (env, limits) => descriptor(limits).createSession(env),
    arbLimits,
    // Limits count the CRLF; a CR waiting for its LF is held too.
    bound: (l) => {
      const x = limitsOf(l);
      return Math.max(x.maxCommandLineBytes, x.maxAuthLineBytes) - 1;
    },
    arbInput,
    backendReply: ['235 2.7.0 Authentication successful'],
    replySets: () => sets,
    tagOk: null,
    // SMTP never waits in mid-line.
    checkAnswered: c.checkEveryLineAnswered,
  });

  // Base64 carries any bytes: the credentials may hold CR and LF, never NUL.
  const arbLogin = fc.record({
    how: fc.constantFrom('plain-ir', 'plain-continuation', 'login-ir', 'login-continuation'),
    authzid: c.arbNoNul(0, 12),
    user: c.arbNoNul(1, 24),
    password: c.arbNoNul(1, 24),
  });
  const arbGreeting = fc.record({ verb: fc.constantFrom('EHLO', 'HELO', 'ehlo'), name: fc.constantFrom('client.example.net', '[192.0.2.1]', 'x', 'bücher.example') });
  const arbPrelude = fc.array(fc.constantFrom('NOOP\r\n', 'RSET\r\n', 'HELP\r\n', 'MAIL FROM:<a@b>\r\n', 'AUTH CRAM-MD5\r\n'), { maxLength: 3 });

  const loginRoundTrip = fc.property(
    arbLogin,
    arbGreeting,
    arbPrelude,
    fc.constantFrom('implicit', 'plain-auth', 'starttls'),
    fc.uint8Array({ maxLength: 64 }),
    c.arbCuts,
    (login, greeting, prelude, listener, suffix, cuts) => {
      const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');
      const plain = core.encodeSaslPlain(login.authzid, login.user, login.password);
      const command = {
        'plain-ir': `AUTH PLAIN ${plain}\r\n`,
        'plain-continuation': `AUTH PLAIN\r\n${plain}\r\n`,
        'login-ir': `AUTH LOGIN ${b64(login.user)}\r\n${b64(login.password)}\r\n`,
        'login-continuation': `AUTH LOGIN\r\n${b64(login.user)}\r\n${b64(login.password)}\r\n`,
      }[login.how];
      const isPlain = login.how.startsWith('plain');
      const expected = { user: login.user, password: login.password, authzid: isPlain ? login.authzid : '', mechanism: isPlain ? 'PLAIN' : 'LOGIN' };
      const name = Buffer.from(greeting.name, 'utf8').toString('latin1');
      const session = latin1(`${greeting.verb} ${name}\r\n${prelude.join('')}${command}`);
      const input = c.loginInput(listener, latin1(`EHLO early\r\nSTARTTLS\r\nAUTH PLAIN ${core.encodeSaslPlain('', 'early', 'bird')}\r\n`), session, suffix);
      const run = c.drive((env) => descriptor(null).createSession(env), listener, input, (b) => c.chunksByFractions(b, cuts), [
        { ok: true, backendReply: ['235 2.7.0 ok'] },
      ]);
      const got = c.checkLoginRoundTrip(run, command, expected, suffix);
      const context = { helo: name, proto: greeting.verb.toUpperCase() === 'EHLO' ? 'ESMTP' : 'SMTP' };
      if (JSON.stringify(got.context) !== JSON.stringify(context)) violated('login round trip', `context ${JSON.stringify(got.context)}, not ${JSON.stringify(context)}`);
    },
  );

  const ehloLine = fc
    .tuple(fc.constantFrom('250-', '250 ', '250'), fc.constantFrom(HOST, 'AUTH PLAIN LOGIN', 'AUTH LOGIN', 'STARTTLS', 'XCLIENT ADDR PORT PROTO HELO SESSION TTL', 'XCLIENT NAME', ...EXTENSIONS, 'SIZE 1000', 'auth plain'))
    .map(([code, text]) => (code === '250' ? code : code + text));
  const arbBackendLine = fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom('220 ready', '220-hello', '220 ', '421 4.3.2 busy', '554 no', '334 ', '334 VXNlcm5hbWU6', '235 2.7.0 ok', '535 5.7.8 no', '454 4.7.0 later', '500 what', '250 ok', '25', '2500 x', '250x') },
    { weight: 5, arbitrary: ehloLine },
    { weight: 2, arbitrary: c.arbLatin1Line },
  );
  /** A backend answering what the login machine sent; `choice` picks among plausible answers. */
  /** Mostly the first option (the way through), else any of them. */
  const pick = (choice, options) => (choice % 4 !== 0 ? options[0] : options[(choice >> 2) % options.length]);
  const keywords = ['AUTH PLAIN LOGIN', 'STARTTLS', 'XCLIENT ADDR PORT PROTO HELO SESSION TTL', ...EXTENSIONS, 'SIZE 1000'];
  const ehloReply = (choice) => {
    // Mostly all of them (so the login can get through), sometimes a subset.
    const kw = choice % 3 === 0 ? keywords.filter((_, i) => (choice >> (i + 2)) & 1) : keywords;
    return [HOST, ...kw].map((t, i, all) => `250${i === all.length - 1 ? ' ' : '-'}${t}`);
  };
  function respond(sent, choice) {
    if (sent === null) return [pick(choice, ['220 ready', '220 ready', '421 busy', '220-hello', '554 no'])];
    if (sent.startsWith('EHLO')) return pick(choice, [ehloReply(choice >> 2), ehloReply(choice >> 2), ['500 what'], ['421 bye']]);
    if (sent.startsWith('STARTTLS')) return pick(choice, [['220 go'], ['220 go'], ['454 4.7.0 no TLS']]);
    if (sent.startsWith('XCLIENT')) return pick(choice, [['220 xclient'], ['220 xclient'], ['550 5.7.0 no']]);
    if (sent === 'AUTH PLAIN\r\n') return pick(choice, [['334 '], ['334 '], ['535 5.7.8 no']]);
    return pick(choice, [['235 2.7.0 ok'], ['235 2.7.0 ok'], ['535 5.7.8 no'], ['454 4.7.0 later'], ['334 ']]);
  }
  const backend = c.backendProperty(core, submission.submissionBackend({ hostname: HOST, policy }), arbBackendLine, respond);

  return {
    ...client.properties,
    'login round trip': loginRoundTrip,
    'backend machine': backend,
  };
}

module.exports = { submissionProperties };
