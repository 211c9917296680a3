import { AndFilter, BerWriter, EqualityFilter, FilterParser, OrFilter, SubstringFilter } from 'ldapts';
import { checkTemplate, escapeDnValue, escapeFilterValue, expandDnTemplate, expandFilterTemplate } from '@mailfront/auth';

/** The filter as ldapts will send it: parsed from our string. */
function parse(filter: string) {
  return FilterParser.parseString(filter);
}

describe('RFC 4515 filter value escaping', () => {
  test.each([
    ['*', '\\2a'],
    ['(', '\\28'],
    [')', '\\29'],
    ['\\', '\\5c'],
    ['\u0000', '\\00'],
    ['*)(uid=*', '\\2a\\29\\28uid=\\2a'],
    ['a\\00b', 'a\\5c00b'],
    ['alice@example.org', 'alice@example.org'],
    // UTF-8 stays as it is (RFC 4515 §3 UTFMB): see the note in ldap-filter.ts.
    ['élodie', 'élodie'],
    ['日本', '日本'],
  ])('%j → %j', (value, escaped) => {
    expect(escapeFilterValue(value)).toBe(escaped);
  });

  test.each(['*)(uid=*', '*', 'a\u0000b', 'a\\00b', 'x)(|(objectClass=*)', '\\2a', 'élodie', '日本)(*'])(
    'the value %j reaches the server unchanged, as one equality assertion',
    (value) => {
      const f = parse(expandFilterTemplate('(uid=%u)', value));
      // One equality match: no substring (wildcard), no OR smuggled in.
      expect(f).toBeInstanceOf(EqualityFilter);
      expect((f as EqualityFilter).attribute).toBe('uid');
      expect((f as EqualityFilter).value).toBe(value);
    },
  );

  test('the default filter keeps its shape whatever the name', () => {
    const f = parse(expandFilterTemplate('(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%u)))', '*)(uid=*))(|(uid=*'));
    expect(f).toBeInstanceOf(AndFilter);
    const [cls, or] = (f as AndFilter).filters;
    expect(cls).toBeInstanceOf(EqualityFilter);
    expect(or).toBeInstanceOf(OrFilter);
    const parts = (or as OrFilter).filters;
    expect(parts).toHaveLength(2);
    for (const p of parts) {
      expect(p).toBeInstanceOf(EqualityFilter);
      expect(p).not.toBeInstanceOf(SubstringFilter);
      expect((p as EqualityFilter).value).toBe('*)(uid=*))(|(uid=*');
    }
  });

  test('non-ASCII is encoded as UTF-8 on the wire', () => {
    const f = parse(expandFilterTemplate('(uid=%u)', 'élodie')) as EqualityFilter;
    const writer = new BerWriter();
    f.write(writer);
    expect(Buffer.from(writer.buffer).includes(Buffer.from('élodie', 'utf8'))).toBe(true);
  });

  test('%% is a literal percent sign, and %u may appear more than once', () => {
    expect(expandFilterTemplate('(|(uid=%u)(description=100%%)(mail=%u))', 'a*')).toBe('(|(uid=a\\2a)(description=100%)(mail=a\\2a))');
  });
});

describe('RFC 4514 DN value escaping', () => {
  test.each([
    ['alice', 'alice'],
    ['a,b', 'a\\,b'],
    ['a+b', 'a\\+b'],
    ['a"b', 'a\\"b'],
    ['a\\b', 'a\\\\b'],
    ['a;b<c>d', 'a\\;b\\<c\\>d'],
    ['a=b', 'a\\=b'],
    [' lead', '\\ lead'],
    ['trail ', 'trail\\ '],
    ['#hash', '\\#hash'],
    ['mid#dle', 'mid#dle'],
    ['a\u0000b', 'a\\00b'],
    ['a\\00b', 'a\\\\00b'],
    ['*)(uid=*', '*)(uid\\=*'],
    ['élodie', 'élodie'],
  ])('%j → %j', (value, escaped) => {
    expect(escapeDnValue(value)).toBe(escaped);
  });

  test('a name cannot add an RDN or leave its place in the template', () => {
    const dn = expandDnTemplate('uid=%u,ou=people,dc=example,dc=org', 'x,ou=admins');
    expect(dn).toBe('uid=x\\,ou\\=admins,ou=people,dc=example,dc=org');
    // Unescaped commas still separate exactly the template's RDNs.
    expect(dn.split(/(?<!\\),/)).toHaveLength(4);
  });
});

describe('checkTemplate', () => {
  test.each([
    ['(uid=%u)', undefined],
    ['(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%u)))', undefined],
    ['(uid=alice)', 'must contain %u, the login name'],
    ['(uid=%n)', 'unknown placeholder %n: only %u (the login name) and %% are known'],
    ['(uid=%u', 'must be a parenthesised LDAP filter, e.g. (uid=%u)'],
    ['(&(uid=%u)', 'has unbalanced parentheses'],
    ['uid=%u', 'must be a parenthesised LDAP filter, e.g. (uid=%u)'],
  ])('filter %j', (t, problem) => {
    expect(checkTemplate('filter', t)).toBe(problem);
  });

  test('a filter ldapts cannot parse is refused with its reason', () => {
    expect(checkTemplate('filter', '(uid=%u)(mail=%u)')).toMatch(/^(is not an LDAP filter|has unbalanced)/);
    expect(checkTemplate('filter', '((uid=%u))')).toMatch(/^is not an LDAP filter/);
  });

  test.each([
    ['uid=%u,ou=people,dc=example,dc=org', undefined],
    ['mail=%u,dc=example,dc=org', undefined],
    ['ou=people,uid=%u', 'must be a DN whose first RDN holds %u, e.g. uid=%u,ou=people,dc=example,dc=org'],
    ['%u', 'must be a DN whose first RDN holds %u, e.g. uid=%u,ou=people,dc=example,dc=org'],
    ['uid=%x,dc=org', 'unknown placeholder %x: only %u (the login name) and %% are known'],
  ])('dn %j', (t, problem) => {
    expect(checkTemplate('dn', t)).toBe(problem);
  });
});
