'use strict';
/**
 * POP3 fuzz properties: the real Pop3ClientSession fed nasty client bytes,
 * USER/PASS and AUTH PLAIN round trips, and the backend login machine fed
 * arbitrary lines.
 *
 * `deps`: { pop3, core } — @mailfront/pop3 and @mailfront/proxy-core.
 */
const c = require('./common');
const { fc, latin1 } = c;

const BACKEND_OK = '+OK Logged in.';

const arbLimits = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.record({ maxLineBytes: fc.integer({ min: 4, max: 300 }), maxSaslLineBytes: fc.integer({ min: 4, max: 600 }) }) },
);

const arbKeyword = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('CAPA', 'STLS', 'USER', 'PASS', 'AUTH', 'QUIT', 'user', 'Pass', 'auth', 'stls') },
  { weight: 1, arbitrary: fc.constantFrom('APOP', 'NOOP', 'RETR', 'TOP', 'UIDL', 'GET', 'POST', 'HTTP/1.1', 'US', 'USERX', 'AUTH\0', '') },
);
const arbArgs = fc.oneof(
  c.arbText(0, 16),
  c.arbBase64,
  fc.constantFrom('PLAIN', 'plain', 'LOGIN', 'PLAIN =', 'PLAIN *', 'PLAIN  x', ' ', '  ', '<script>', 'a"b', '\0', 'PLAIN AGFsaWNlAHNlY3JldA==', 'PLAIN a b'),
  c.arbBase64.map((b) => `PLAIN ${b}`),
  fc.uint8Array({ maxLength: 24 }).map((u) => Buffer.from(u).toString('latin1')),
);
const arbEol = fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r', '', ' \r\n');
const arbCommand = fc
  .tuple(arbKeyword, fc.constantFrom(' ', ' ', '', '  '), fc.option(arbArgs, { nil: '' }), arbEol)
  .map(([k, sp, a, eol]) => `${k}${a === '' ? '' : sp + a}${eol}`);
const arbFragment = fc.oneof(
  { weight: 8, arbitrary: arbCommand.map((s) => Buffer.from(s, 'latin1')) },
  { weight: 2, arbitrary: c.arbBytes },
  { weight: 1, arbitrary: c.arbControl.map(latin1) },
  { weight: 1, arbitrary: c.arbLongRun([4, 300, 600, 1024, 8192]).map(latin1) },
  { weight: 2, arbitrary: c.arbBase64.map((b) => latin1(`${b}\r\n`)) },
  { weight: 1, arbitrary: fc.constantFrom('*\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'STLS\r\n', 'STLS\r\nUSER u\r\nPASS p\r\n').map(latin1) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(c.arbPlainB64, fc.constantFrom('USER alice\r\nPASS secret', 'USER alice', 'PASS secret', 'AUTH PLAIN B64', 'AUTH PLAIN\r\nB64', 'AUTH PLAIN\r\n*'))
      .map(([b64, cmd]) => latin1(`${cmd.replace('B64', b64)}\r\n`)),
  },
);
const arbInput = fc.array(arbFragment, { maxLength: 12 }).map((parts) => Buffer.concat(parts));

function pop3Properties(deps) {
  const { pop3, core } = deps;
  const limitsOf = (l) => l ?? pop3.DEFAULT_POP3_LIMITS;

  function replySets() {
    const r = pop3.pop3Replies;
    const templates = [];
    for (const [key, value] of Object.entries(r)) {
      if (typeof value === 'string') templates.push(value);
      else if (key === 'capa') for (const e of c.ENV_STATES) templates.push(value(pop3.preLoginCapabilities(e)));
      else if (key === 'authMechanisms') templates.push(value(['PLAIN']));
      else throw new Error(`pop3 reply ${key}: unknown template`);
    }
    templates.push(`${BACKEND_OK}\r\n`);
    return c.lineSets(templates);
  }
  const sets = replySets();

  const client = c.clientProperties({
    create: (env, limits) => pop3.pop3Protocol(limitsOf(limits)).createSession(env),
    arbLimits,
    // A CR waiting for its LF is not line content (LineBuffer), hence + 1.
    bound: (l) => {
      const x = limitsOf(l);
      return Math.max(x.maxLineBytes, x.maxSaslLineBytes) + 1;
    },
    arbInput,
    backendReply: [BACKEND_OK],
    replySets: () => sets,
    tagOk: null,
    // POP3 never waits in mid-line.
    checkAnswered: c.checkEveryLineAnswered,
  });

  // USER/PASS take the rest of the line; AUTH PLAIN's payload may carry CR and LF, never NUL.
  const arbLogin = fc.oneof(
    fc.record({ how: fc.constant('user'), user: c.arbText(1, 24), password: c.arbText(1, 24), keywords: fc.constantFrom(['USER', 'PASS'], ['user', 'pass'], ['User', 'PaSs']) }),
    fc.record({ how: fc.constantFrom('plain-ir', 'plain-continuation'), authzid: c.arbNoNul(0, 12), user: c.arbNoNul(1, 24), password: c.arbNoNul(1, 24) }),
  );
  const arbPrelude = fc.array(fc.constantFrom('CAPA\r\n', 'AUTH\r\n', 'USER someone\r\n', 'PASS\r\n', 'NOOP\r\n'), { maxLength: 3 });

  const loginRoundTrip = fc.property(
    arbLogin,
    arbPrelude,
    fc.constantFrom('implicit', 'plain-auth', 'starttls'),
    fc.uint8Array({ maxLength: 64 }),
    c.arbCuts,
    (login, prelude, listener, suffix, cuts) => {
      let command;
      let expected;
      const b64 = core.encodeSaslPlain(login.authzid ?? '', login.user, login.password);
      if (login.how === 'user') {
        const [u, p] = login.keywords;
        command = `${u} ${Buffer.from(login.user, 'utf8').toString('latin1')}\r\n${p} ${Buffer.from(login.password, 'utf8').toString('latin1')}\r\n`;
        expected = { user: login.user, password: login.password, authzid: '', mechanism: 'USER' };
      } else {
        command = login.how === 'plain-ir' ? `AUTH PLAIN ${b64}\r\n` : `AUTH PLAIN\r\n${b64}\r\n`;
        expected = { authzid: login.authzid, user: login.user, password: login.password, mechanism: 'PLAIN' };
      }
      const session = latin1(prelude.join('') + command);
      const input = c.loginInput(listener, latin1('STLS\r\nUSER early\r\nPASS bird\r\n'), session, suffix);
      const run = c.drive(
        (env) => pop3.pop3Protocol().createSession(env),
        listener,
        input,
        (b) => c.chunksByFractions(b, cuts),
        [{ ok: true, backendReply: [BACKEND_OK] }],
      );
      c.checkLoginRoundTrip(run, command, expected, suffix);
    },
  );

  const capaWords = ['STLS', 'USER', 'SASL PLAIN', 'SASL LOGIN', 'SASL', 'PIPELINING', 'XCLIENT', 'TOP', 'stls', 'sasl plain'];
  const arbBackendLine = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('+OK', '+OK ready', '+OK [XCLIENT] Dovecot ready.', '-ERR', '-ERR no', '-ERR [SYS/TEMP] later', '-ERR [AUTH] no', '-ERR [IN-USE] x', '+ ', '+', '.', '..x', '+OKAY', '+ok x') },
    { weight: 3, arbitrary: fc.constantFrom(...capaWords) },
    { weight: 2, arbitrary: c.arbLatin1Line },
  );
  /** A backend answering what the login machine sent; `choice` picks among plausible answers. */
  /** Mostly the first option (the way through), else any of them. */
  const pick = (choice, options) => (choice % 4 !== 0 ? options[0] : options[(choice >> 2) % options.length]);
  const capa = (choice) => capaWords.filter((_, i) => (choice >> i) & 1);
  const toLogin = (command, choice) => {
    if (command.startsWith('USER')) return pick(choice, [['+OK'], ['+OK'], ['-ERR [AUTH] no']]);
    if (command.startsWith('PASS')) return pick(choice, [['+OK Logged in.'], ['-ERR [AUTH] no'], ['-ERR [SYS/TEMP] later'], ['+OK']]);
    if (command === 'AUTH PLAIN') return pick(choice, [['+ '], ['+ '], ['-ERR no']]);
    return pick(choice, [['+OK Logged in.'], ['+OK Logged in.'], ['-ERR [AUTH] no'], ['+ '], ['-ERR [IN-USE] locked']]);
  };
  function respond(sent, choice) {
    if (sent === null) return [pick(choice, ['+OK ready', '+OK [XCLIENT] Dovecot ready.', '-ERR busy', '+OK ready'])];
    const commands = sent.split('\r\n').filter((x) => x !== '');
    return commands.flatMap((command, i) => {
      const ch = choice >> (3 * i);
      if (command === 'CAPA') return pick(ch, [['+OK', ...capa(ch >> 2), '.'], ['+OK', ...capa(ch >> 2), '.'], ['-ERR'], ['+OK', 'USER', '.']]);
      if (command === 'STLS') return pick(ch, [['+OK'], ['+OK'], ['-ERR no']]);
      if (command.startsWith('XCLIENT')) return pick(ch, [['+OK'], ['+OK'], ['-ERR no']]);
      return toLogin(command, ch);
    });
  }
  const backend = c.backendProperty(core, pop3.pop3Backend, arbBackendLine, respond);

  return {
    ...client.properties,
    'login round trip': loginRoundTrip,
    'backend machine': backend,
  };
}

module.exports = { pop3Properties };
