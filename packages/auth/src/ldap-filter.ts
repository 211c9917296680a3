import { FilterParser } from 'ldapts';

/**
 * Putting a login name into an LDAP search filter or a DN. The name comes
 * from the client, so every character that means something to the filter
 * or DN grammar is escaped: without it `*)(uid=*` turns "this user" into
 * "any user" (LDAP injection).
 */

/**
 * RFC 4515 §3: in a filter's assertion value, `*`, `(`, `)`, `\` and NUL
 * must be written as `\` and two hex digits.
 *
 * Other characters, non-ASCII included, go as they are: the grammar allows
 * UTF-8 there (`UTFMB`). Escaping them byte by byte would be valid LDAP too,
 * but ldapts's filter parser turns each `\XX` into one UTF-16 code unit
 * (String.fromCharCode), so `\c3\a9` would reach the server as the four UTF-8
 * bytes of "Ã©" instead of the two of "é".
 */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\u0000]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * RFC 4514 §2.4: in a DN's attribute value, a backslash goes before `"`,
 * `+`, `,`, `;`, `<`, `>`, `\` (and `=`, which the grammar allows escaped and
 * some servers misread bare); a leading space or `#` and a trailing space
 * are escaped; NUL and other control characters become `\XX`.
 * Non-ASCII goes as UTF-8, as the grammar allows.
 */
export function escapeDnValue(value: string): string {
  let out = '';
  const chars = Array.from(value);
  chars.forEach((c, i) => {
    const code = c.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f) out += `\\${code.toString(16).padStart(2, '0')}`;
    else if ('"+,;<>\\='.includes(c)) out += `\\${c}`;
    else if ((i === 0 && (c === ' ' || c === '#')) || (i === chars.length - 1 && c === ' ')) out += `\\${c}`;
    else out += c;
  });
  return out;
}

/**
 * Replace `%u` with the escaped login name; `%%` is a literal `%`. Any other
 * `%` sequence is refused by checkTemplate at start-up, so none reaches here
 * unnoticed.
 */
function expand(template: string, value: string, escape: (v: string) => string): string {
  return template.replace(/%([%u])/g, (_, c: string) => (c === '%' ? '%' : escape(value)));
}

export function expandFilterTemplate(template: string, user: string): string {
  return expand(template, user, escapeFilterValue);
}

export function expandDnTemplate(template: string, user: string): string {
  return expand(template, user, escapeDnValue);
}

/**
 * Why a filter (`kind` 'filter') or DN template ('dn') cannot be used, or
 * undefined if it can: it must name the user with `%u`, use no other `%`
 * sequence, and (for a filter) parse once a name is put in.
 */
export function checkTemplate(kind: 'filter' | 'dn', template: string): string | undefined {
  const bad = /%([^%u]|$)/.exec(template.replace(/%%/g, ''));
  if (bad) return `unknown placeholder %${bad[1] ?? ''}: only %u (the login name) and %% are known`;
  if (!/%u/.test(template.replace(/%%/g, ''))) return 'must contain %u, the login name';
  if (kind === 'filter') {
    const sample = expandFilterTemplate(template, 'user@example.org');
    if (!sample.startsWith('(') || !sample.endsWith(')')) return 'must be a parenthesised LDAP filter, e.g. (uid=%u)';
    // ldapts's parser lets a missing closing parenthesis pass; count them here.
    let depth = 0;
    for (const c of sample) {
      depth += c === '(' ? 1 : c === ')' ? -1 : 0;
      if (depth < 0) break;
    }
    if (depth !== 0) return 'has unbalanced parentheses';
    try {
      FilterParser.parseString(sample);
    } catch (err) {
      return `is not an LDAP filter (RFC 4515): ${(err as Error).message.split('\n')[0]}`;
    }
  } else if (!/^[A-Za-z][\w.-]*=[^,]*%u/.test(template)) {
    return 'must be a DN whose first RDN holds %u, e.g. uid=%u,ou=people,dc=example,dc=org';
  }
  return undefined;
}
