import { describe, expect, it } from 'vitest';
import { MIN_SECRET_LENGTH, Redactor, secretsToMask } from '../../scripts/lib/secrets/redact.js';

/** Feeds `input` through a pipe cut at the given places and returns what came out. */
function streamed(r: Redactor, input: Buffer, cuts: number[]): Buffer {
  const out: Buffer[] = [];
  const pipe = r.pipe((b) => out.push(Buffer.from(b)));
  let at = 0;
  for (const cut of [...cuts, input.length]) {
    pipe.write(input.subarray(at, cut));
    at = cut;
  }
  pipe.end();
  return Buffer.concat(out);
}

const TOKEN = 'tok-3f9a7c1e5b';

describe('redaction', () => {
  it('masks a secret wherever a stream is cut, also inside the secret, as if it came whole', () => {
    const r = new Redactor([['API_TOKEN', TOKEN]]);
    const input = Buffer.from(`step 1 ${TOKEN} and again ${TOKEN}${TOKEN}\nend tok-3f9 (a prefix only)\n`);
    const whole = Buffer.from(r.text(input.toString()));
    expect(whole.toString()).toBe('step 1 [redacted API_TOKEN] and again [redacted API_TOKEN][redacted API_TOKEN]\nend tok-3f9 (a prefix only)\n');
    for (let cut = 0; cut <= input.length; cut++) {
      expect(streamed(r, input, [cut]).equals(whole), `cut at ${cut}`).toBe(true);
    }
    const byteByByte = streamed(r, input, Array.from({ length: input.length }, (_, i) => i));
    expect(byteByByte.equals(whole)).toBe(true);
  });

  it('holds back no more than a possible start of a secret, and passes everything else at once', () => {
    const r = new Redactor([['API_TOKEN', TOKEN]]);
    const out: string[] = [];
    const pipe = r.pipe((b) => out.push(b.toString()));
    pipe.write(Buffer.from('loss 0.5\n'));
    expect(out.join('')).toBe('loss 0.5\n');
    pipe.write(Buffer.from('key tok-3f'));
    expect(out.join('')).toBe('loss 0.5\nkey ');
    pipe.write(Buffer.from('9a7c1e5b!'));
    expect(out.join('')).toBe('loss 0.5\nkey [redacted API_TOKEN]!');
    pipe.write(Buffer.from('tok'));
    pipe.end();
    expect(out.join('')).toBe('loss 0.5\nkey [redacted API_TOKEN]!tok');
  });

  it('masks the longer of two secrets that start alike, at every cut', () => {
    const r = new Redactor([['SHORT', 'abcdefgh'], ['LONG', 'abcdefghijklmn']]);
    const input = Buffer.from('x abcdefghijklmn y abcdefghij z abcdefgh');
    const whole = Buffer.from(r.text(input.toString()));
    expect(whole.toString()).toBe('x [redacted LONG] y [redacted SHORT]ij z [redacted SHORT]');
    for (let cut = 0; cut <= input.length; cut++) expect(streamed(r, input, [cut]).toString(), `cut at ${cut}`).toBe(whole.toString());
  });

  it('streams exactly as it masks whole text, for random secrets that overlap, cut at random places', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) % n);
    const word = (len: number) => Array.from({ length: len }, () => 'xyz\n'[rand(4)]).join('');
    for (let round = 0; round < 300; round++) {
      const secrets = Array.from({ length: 1 + rand(3) }, (_, i) => [`K${i}`, word(2 + rand(6))] as [string, string]);
      const r = new Redactor(secrets);
      const input = Buffer.from(word(60));
      const cuts = Array.from({ length: rand(6) }, () => rand(input.length + 1)).sort((a, b) => a - b);
      const out = streamed(r, input, cuts).toString();
      expect(out, `${JSON.stringify(secrets)} ${JSON.stringify(input.toString())} ${cuts}`).toBe(r.text(input.toString()));
      for (const [, v] of secrets) expect(out).not.toContain(v);
    }
  });

  it('masks a value as JSON writes it, the JavaScript and the Python way, and each line of a multi-line value', () => {
    const value = `it's "q" $HOME \\x é sp\nsecond-line-of-it`;
    const r = new Redactor([['S', value]]);
    const js = JSON.stringify({ note: value });
    const py = '{"note": "it\'s \\"q\\" $HOME \\\\x \\u00e9 sp\\nsecond-line-of-it"}';
    expect(r.text(js)).toBe('{"note":"[redacted S]"}');
    expect(r.text(py)).toBe('{"note": "[redacted S]"}');
    expect(r.text(`raw ${value}!`)).toBe('raw [redacted S]!');
    expect(r.text('log: second-line-of-it\n')).toBe('log: [redacted S]\n');
  });

  it('masks bytes, not text: binary output passes unchanged and a secret cut inside a UTF-8 character is still found', () => {
    const r = new Redactor([['S', 'geheimnis-ßü-wert']]);
    const binary = Buffer.from([0xff, 0x00, 0xc3, 0x28, 0x80, 0x0a]);
    expect(streamed(r, binary, [3]).equals(binary)).toBe(true);
    const input = Buffer.from('a geheimnis-ßü-wert b');
    const inside = input.indexOf(Buffer.from('ß')) + 1; // between the two bytes of ß
    expect(streamed(r, input, [inside]).toString()).toBe('a [redacted S] b');
  });

  it(`still masks a value shorter than ${MIN_SECRET_LENGTH} characters, and names it to warn about`, () => {
    const r = new Redactor([['PIN', '4711'], ['LONG_ENOUGH', TOKEN], ['EMPTY', '']]);
    expect(r.short).toEqual(['PIN']);
    expect(r.text('pin 4711, step 14711')).toBe('pin [redacted PIN], step 1[redacted PIN]');
  });

  it('without secrets, passes chunks through untouched', () => {
    const r = new Redactor([]);
    expect(r.empty).toBe(true);
    const seen: Buffer[] = [];
    const chunk = Buffer.from('anything');
    r.pipe((b) => seen.push(b)).write(chunk);
    expect(seen[0]).toBe(chunk);
    expect(r.text('anything')).toBe('anything');
  });

  it('masks the declared keys and the store and Kaggle credentials, from every source, and nothing else', () => {
    const pairs = secretsToMask(['API_TOKEN'], { API_TOKEN: 'a-token-123', AWS_REGION: 'us-east-1', OTHER: 'x' }, { AWS_SECRET_ACCESS_KEY: 'aws-secret-1', KAGGLE_KEY: 'kaggle-key-1', API_TOKEN: 'older-token' });
    expect(pairs).toEqual([
      ['API_TOKEN', 'a-token-123'],
      ['API_TOKEN', 'older-token'],
      ['AWS_SECRET_ACCESS_KEY', 'aws-secret-1'],
      ['KAGGLE_KEY', 'kaggle-key-1'],
    ]);
  });
});
